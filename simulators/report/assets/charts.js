// gridmesh report: draws each chart as SVG from the JSON embedded in the page.
// Three kinds (see simulators/report/charts.py): "lines", "bars" and "network".
// Each figure[data-chart=ID] gets the chart charts[ID]; a chart that fails to draw says so
// in its figure and in the page's list of script errors.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 900, HEIGHT = 320;
  const PAD = { left: 58, right: 16, top: 24, bottom: 44 };
  const COLORS = ["#1f77b4", "#e8a33d", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                  "#7f7f7f", "#bcbd22", "#17becf"];

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, className, parent, text) {
    const node = document.createElement(name);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function titled(node, text) {
    el("title", {}, node).textContent = text;
    return node;
  }

  function extent(values) {  // [min, max] of the values and 0, without spreading long arrays
    let lo = 0, hi = 0;
    for (const v of values) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    return [lo, hi];
  }

  function color(index) {
    return COLORS[index % COLORS.length];
  }

  function seriesColor(s, index) {  // a series may name its colour, so that related ones share it
    return color(s.color === undefined ? index : s.color);
  }

  function fmt(value, unit) {
    if (value === null || value === undefined) return "none";
    const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 3;
    return value.toFixed(digits) + (unit ? " " + unit : "");
  }

  // Round axis ticks: 1, 2 or 5 times a power of ten, about `count` of them over [lo, hi].
  function ticks(lo, hi, count) {
    if (lo === hi) { lo -= 1; hi += 1; }
    const raw = (hi - lo) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(f => f * power).find(s => s >= raw);
    const out = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
  }

  function svgFor(plot, label) {
    return el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": label,
                       preserveAspectRatio: "xMidYMid meet" }, plot);
  }

  function yAxis(svg, lo, hi, unit) {
    const marks = ticks(lo, hi, 5);
    const bottom = Math.min(lo, marks[0]), top = Math.max(hi, marks[marks.length - 1]);
    const y = v => HEIGHT - PAD.bottom - (v - bottom) / (top - bottom) * (HEIGHT - PAD.top - PAD.bottom);
    const axis = el("g", { class: "axis y" }, svg);
    const step = marks.length > 1 ? marks[1] - marks[0] : 1;
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    for (const v of marks) {
      el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), class: v === 0 ? "zero" : "grid" },
         axis);
      el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, axis).textContent = v.toFixed(digits);
    }
    if (unit) el("text", { x: 4, y: 12, class: "unit" }, axis).textContent = unit;
    return y;
  }

  // A button per series that hides and shows the series' group.
  function legend(figure, list, groups) {
    const box = html("div", "legend", null);
    figure.insertBefore(box, figure.querySelector("figcaption"));
    list.forEach((s, i) => {
      const item = html("button", "legend-item", box);
      item.type = "button";
      html("span", "swatch" + (s.dashed ? " dashed" : ""), item).style.background = seriesColor(s, i);
      html("span", "", item, s.name);
      item.addEventListener("click", () => item.classList.toggle("off", groups[i].classList.toggle("hidden")));
    });
  }

  // -- lines: one point per slot, drawn as a line, a step or an area ------------------------------
  function drawLines(figure, chart) {
    const n = chart.x.length;
    const [lo, hi] = extent(chart.series.flatMap(s => s.values).concat((chart.hlines || []).map(h => h.value)));
    const svg = svgFor(figure.querySelector(".plot"), chart.title);
    const y = yAxis(svg, lo, hi, chart.unit);
    const span = n > 1 ? n : 1;
    const x = i => PAD.left + i / span * (WIDTH - PAD.left - PAD.right);  // slot i spans x(i)..x(i + 1)
    xAxis(svg, chart.x, x);
    for (const mark of chart.markers || []) {
      titled(el("line", { class: "marker", x1: x(mark.index + 0.5), x2: x(mark.index + 0.5),
                          y1: PAD.top, y2: HEIGHT - PAD.bottom }, svg), `${chart.x[mark.index]}: ${mark.label}`);
    }
    for (const level of chart.hlines || []) {
      const g = el("g", { class: "hline" }, svg);
      el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(level.value), y2: y(level.value) }, g);
      el("text", { x: WIDTH - PAD.right - 4, y: y(level.value) - 4, "text-anchor": "end" }, g).textContent = level.label;
    }
    const groups = chart.series.map((s, i) => {
      const g = el("g", { class: "series-group", "data-series": s.name }, svg);
      const points = [];  // runs of [x, y] without gaps
      let run = null;
      s.values.forEach((v, t) => {
        if (v === null) { run = null; return; }
        if (!run) { run = []; points.push(run); }
        if (s.style === "step") run.push([x(t), y(v)], [x(t + 1), y(v)]);
        else run.push([x(t + 0.5), y(v)]);
      });
      const d = points.map(r => r.map((p, k) => (k ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1))
        .join("")).join("");
      if (s.style === "area") {
        const fill = points.map(r => `M${r[0][0].toFixed(1)},${y(0).toFixed(1)}` +
          r.map(p => "L" + p[0].toFixed(1) + "," + p[1].toFixed(1)).join("") +
          `L${r[r.length - 1][0].toFixed(1)},${y(0).toFixed(1)}Z`).join("");
        el("path", { class: "area-fill", d: fill, fill: seriesColor(s, i) }, g);
      }
      el("path", { class: "series " + s.style + (s.dashed ? " dashed" : ""), d: d, stroke: seriesColor(s, i) }, g);
      return g;
    });
    hover(figure, svg, chart, x, groups);
    legend(figure, chart.series, groups);
  }

  function xAxis(svg, labels, x) {
    const axis = el("g", { class: "axis x" }, svg);
    const every = Math.max(1, Math.ceil(labels.length / 12));
    labels.forEach((label, i) => {
      if (i % every) return;
      const at = x(i + 0.5);
      el("line", { x1: at, x2: at, y1: HEIGHT - PAD.bottom, y2: HEIGHT - PAD.bottom + 4 }, axis);
      const time = label.length > 11 ? label.slice(11) : label;
      const text = el("text", { x: at, y: HEIGHT - PAD.bottom + 16, "text-anchor": "middle" }, axis);
      text.textContent = (i === 0 || time === "00:00") && label.length > 11 ? label.slice(5, 10) + " " + time : time;
    });
  }

  // A guide under the pointer and a box with every visible series' value at that slot.
  function hover(figure, svg, chart, x, groups) {
    const guide = el("line", { class: "guide", y1: PAD.top, y2: HEIGHT - PAD.bottom, visibility: "hidden" }, svg);
    const overlay = el("rect", { class: "overlay", x: PAD.left, y: PAD.top, width: WIDTH - PAD.left - PAD.right,
                                 height: HEIGHT - PAD.top - PAD.bottom }, svg);
    const tip = html("div", "tooltip", figure.querySelector(".plot"));
    tip.hidden = true;
    overlay.addEventListener("mousemove", event => {
      const box = svg.getBoundingClientRect();
      const px = (event.clientX - box.left) / box.width * WIDTH;
      const slot = Math.max(0, Math.min(chart.x.length - 1, Math.floor((px - PAD.left) / (x(1) - x(0)))));
      guide.setAttribute("x1", x(slot + 0.5));
      guide.setAttribute("x2", x(slot + 0.5));
      guide.setAttribute("visibility", "visible");
      tip.replaceChildren();
      html("div", "tip-title", tip, chart.x[slot]);
      chart.series.forEach((s, i) => {
        if (groups[i].classList.contains("hidden") || s.values[slot] === null) return;
        const line = html("div", "", tip);
        html("span", "swatch", line).style.background = seriesColor(s, i);
        html("span", "", line, `${s.name}: ${fmt(s.values[slot], chart.unit)}`);
      });
      const marks = (chart.markers || []).filter(m => m.index === slot);
      for (const mark of marks) html("div", "tip-event", tip, mark.label);
      tip.hidden = false;
      const left = event.clientX - box.left;
      tip.style.left = (left > box.width / 2 ? left - tip.offsetWidth - 12 : left + 12) + "px";
      tip.style.top = (event.clientY - box.top + 8) + "px";
    });
    overlay.addEventListener("mouseleave", () => { tip.hidden = true; guide.setAttribute("visibility", "hidden"); });
  }

  // -- bars: one bar per category and series, from zero ------------------------------------------
  function drawBars(figure, chart) {
    const [lo, hi] = extent(chart.series.flatMap(s => s.values));
    const svg = svgFor(figure.querySelector(".plot"), chart.title);
    const y = yAxis(svg, lo, hi, chart.unit);
    const n = chart.categories.length, k = chart.series.length;
    const band = (WIDTH - PAD.left - PAD.right) / Math.max(n, 1);
    const bar = band * 0.8 / k;
    const axis = el("g", { class: "axis x" }, svg);
    const every = Math.max(1, Math.ceil(n / 40));
    const groups = chart.series.map((s, j) => {
      const g = el("g", { class: "series-group", "data-series": s.name }, svg);
      s.values.forEach((v, i) => {
        const top = y(Math.max(v, 0)), height = Math.abs(y(v) - y(0));
        titled(el("rect", { class: "bar", x: PAD.left + i * band + band * 0.1 + j * bar, y: top,
                            width: Math.max(bar - 1, 1), height: Math.max(height, 0.5), fill: seriesColor(s, j) }, g),
               `${chart.categories[i]}, ${s.name}: ${fmt(v, chart.unit)}`);
      });
      return g;
    });
    chart.categories.forEach((label, i) => {
      if (i % every) return;
      const at = PAD.left + (i + 0.5) * band;
      const room = n > 8 ? 16 : Math.floor(band / 6.5);  // characters that fit under a bar
      const short = label.length > room ? label.slice(0, room - 1) + "…" : label;
      const text = el("text", { x: at, y: HEIGHT - PAD.bottom + 14, "text-anchor": n > 8 ? "end" : "middle" }, axis);
      if (n > 8) text.setAttribute("transform", `rotate(-60 ${at} ${HEIGHT - PAD.bottom + 14})`);
      text.textContent = short;
    });
    legend(figure, chart.series, groups);
  }

  // -- network: members on a circle, a line from seller to buyer as wide as their energy ----------
  function drawNetwork(figure, chart) {
    const size = 560, centre = size / 2, radius = size / 2 - 60;
    const svg = el("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": chart.title,
                            class: "network" }, figure.querySelector(".plot"));
    const place = {};
    chart.nodes.forEach((node, i) => {
      const angle = 2 * Math.PI * i / chart.nodes.length - Math.PI / 2;
      place[node.id] = [centre + radius * Math.cos(angle), centre + radius * Math.sin(angle), angle];
    });
    const most = Math.max(extent(chart.edges.map(e => e.kwh))[1], 1e-9);
    const traded = Math.max(extent(chart.nodes.map(n => n.sold_kwh + n.bought_kwh))[1], 1e-9);
    const edges = el("g", { class: "edges" }, svg);
    const lines = chart.edges.map(edge => {
      const [x1, y1] = place[edge.from], [x2, y2] = place[edge.to];
      const line = el("line", { class: "edge", x1: x1, y1: y1, x2: x2, y2: y2,
                                "stroke-width": (1 + 9 * edge.kwh / most).toFixed(2),
                                "data-from": edge.from, "data-to": edge.to }, edges);
      return titled(line, `${edge.from} → ${edge.to}: ${fmt(edge.kwh, "kWh")} in ${edge.trades} trade(s)`);
    });
    const nodes = el("g", { class: "nodes" }, svg);
    for (const node of chart.nodes) {
      const [cx, cy, angle] = place[node.id];
      const g = el("g", { class: "node-group" }, nodes);
      const net = node.sold_kwh - node.bought_kwh;
      const circle = el("circle", { class: "node " + (net >= 0 ? "seller" : "buyer"), cx: cx, cy: cy,
                                    r: (4 + 10 * Math.sqrt((node.sold_kwh + node.bought_kwh) / traded)).toFixed(1) }, g);
      titled(circle, `${node.id} (${node.role}): sold ${fmt(node.sold_kwh, "kWh")}, bought ${fmt(node.bought_kwh, "kWh")}`);
      if (chart.nodes.length <= 40) {
        const label = el("text", { x: centre + (radius + 22) * Math.cos(angle), y: centre + (radius + 22) * Math.sin(angle) + 4,
                                   "text-anchor": "middle", class: "node-label" }, g);
        label.textContent = node.id;
      }
      circle.addEventListener("mouseenter", () => lines.forEach(line => line.classList.toggle(
        "dim", line.dataset.from !== node.id && line.dataset.to !== node.id)));
      circle.addEventListener("mouseleave", () => lines.forEach(line => line.classList.remove("dim")));
    }
    const box = html("div", "legend", null);
    figure.insertBefore(box, figure.querySelector("figcaption"));
    for (const [cls, text] of [["seller", "sold more than it bought"], ["buyer", "bought more than it sold"]]) {
      const item = html("span", "legend-item", box);
      html("span", "swatch " + cls, item);
      html("span", "", item, text);
    }
  }

  const DRAW = { lines: drawLines, bars: drawBars, network: drawNetwork };

  const data = JSON.parse(document.getElementById("report-data").textContent);
  let drawn = 0;
  for (const figure of document.querySelectorAll("figure[data-chart]")) {
    const chart = data.charts[figure.dataset.chart];
    try {
      if (!chart || !DRAW[chart.kind]) throw new Error(`no chart ${figure.dataset.chart}`);
      DRAW[chart.kind](figure, chart);
      figure.dataset.drawn = "yes";
      drawn += 1;
    } catch (error) {
      figure.dataset.drawn = "no";
      html("p", "errors", figure, `This chart could not be drawn: ${error.message}`);
      window.dispatchEvent(new ErrorEvent("error", { message: `${figure.dataset.chart}: ${error.message}` }));
    }
  }
  document.body.dataset.chartsDrawn = String(drawn);
})();

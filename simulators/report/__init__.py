"""The run report: ``RUN/report.html``, one self-contained page per testbed run.

:mod:`simulators.report.run_data` reads a finished run folder (the I/O shell);
:mod:`simulators.report.charts` and :mod:`simulators.report.comparison` turn its rows into
chart data and tables (pure); :mod:`simulators.report.page` writes the page with the data
as JSON and the report's own CSS and JavaScript (``assets/``) inline, so it opens from a
file with no network. ``docs/reports.md`` says what each chart shows.
"""

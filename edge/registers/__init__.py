"""Modbus register maps as data: templates (YAML) and the codec that reads and writes them.

:mod:`edge.registers.template` loads and checks ``edge/devices/*.yaml``;
:mod:`edge.registers.codec` turns register words into values in gridmesh units and back.
Both are pure: no pymodbus, no I/O beyond reading the template files.
"""

from edge.registers.codec import ReadBlock, RegisterError, decode_block, decode_point, encode_point, read_plan
from edge.registers.template import DeviceTemplate, Point, all_templates, load_template

__all__ = [
    "DeviceTemplate",
    "Point",
    "ReadBlock",
    "RegisterError",
    "all_templates",
    "decode_block",
    "decode_point",
    "encode_point",
    "load_template",
    "read_plan",
]

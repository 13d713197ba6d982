"""Talk to one Modbus device directly: read every point of a template, or list the
SunSpec models a device holds. For installers and for hardware in the loop."""

from __future__ import annotations

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.registers.codec import RegisterError, decode_block, read_plan
from edge.registers.sunspec import BASE_ADDRESSES, END_ID, MAX_MODELS, ModelHeader, is_sunspec_marker
from edge.registers.template import DeviceTemplate, Table


class DeviceError(Exception):
    """The device could not be reached or did not answer as expected."""


class DeviceLink:
    """One Modbus TCP connection to ``host:port``."""

    def __init__(self, host: str, port: int, timeout_s: float = 2.0) -> None:
        self.where = f"{host}:{port}"
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)

    async def __aenter__(self) -> DeviceLink:
        if not await self._client.connect():
            raise DeviceError(f"cannot connect to {self.where}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._client.close()

    async def registers(self, table: Table, address: int, count: int, unit: int) -> list[int]:
        try:
            if table == "input":
                response = await self._client.read_input_registers(address, count=count, device_id=unit)
            else:
                response = await self._client.read_holding_registers(address, count=count, device_id=unit)
        except (ModbusException, OSError) as exc:
            raise DeviceError(f"{self.where} unit {unit}: {table} {address}+{count}: {exc}") from None
        if response.isError():
            raise DeviceError(f"{self.where} unit {unit}: {table} {address}+{count}: {response}")
        return list(response.registers)

    async def read_template(self, template: DeviceTemplate, unit: int) -> dict[str, int]:
        """Every point the template reads, in gridmesh units."""
        values: dict[str, int] = {}
        for block in read_plan(template):
            table: Table = "input" if block.table == "input" else "holding"
            words = await self.registers(table, block.address, block.count, unit)
            try:
                values.update(decode_block(template, block, words))
            except RegisterError as exc:
                raise DeviceError(f"{self.where} unit {unit}: {exc}") from None
        return values

    async def sunspec_models(self, unit: int) -> list[ModelHeader]:
        """The SunSpec model chain; DeviceError if the device holds no "SunS" marker."""
        for base in BASE_ADDRESSES:
            try:
                marker = await self.registers("holding", base, 2, unit)
            except DeviceError:
                continue
            if is_sunspec_marker(marker):
                return await self._chain(base + 2, unit)
        raise DeviceError(f"{self.where} unit {unit}: no SunSpec marker at "
                          f"{', '.join(map(str, BASE_ADDRESSES))}")

    async def _chain(self, address: int, unit: int) -> list[ModelHeader]:
        models: list[ModelHeader] = []
        while len(models) < MAX_MODELS:
            model_id, length = await self.registers("holding", address, 2, unit)
            if model_id == END_ID:
                return models
            models.append(ModelHeader(address, model_id, length))
            address = models[-1].next_address
        raise DeviceError(f"{self.where} unit {unit}: no end marker after {MAX_MODELS} models")

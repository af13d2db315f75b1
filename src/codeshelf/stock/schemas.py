from __future__ import annotations

from pydantic import BaseModel

from codeshelf.catalog.service import face_value
from codeshelf.kit.schemas import MoneyOut
from codeshelf.stock.service import InventoryLine


class InventoryItem(BaseModel):
    product_id: str
    platform: str
    region: str
    denomination: MoneyOut
    price: MoneyOut
    quantity_available: int
    available: bool

    @classmethod
    def of(cls, line: InventoryLine) -> InventoryItem:
        return cls(
            product_id=line.product.sku,
            platform=line.product.platform,
            region=line.product.region,
            denomination=MoneyOut.of(face_value(line.product)),
            price=MoneyOut.of(line.price),
            quantity_available=line.available,
            available=line.available > 0,
        )


class Inventory(BaseModel):
    data: list[InventoryItem]

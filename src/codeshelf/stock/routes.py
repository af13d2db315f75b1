from __future__ import annotations

from fastapi import APIRouter

from codeshelf.api.deps import PrincipalDep, ServicesDep
from codeshelf.stock import service
from codeshelf.stock.schemas import Inventory, InventoryItem

router = APIRouter(tags=["catalog"])


@router.get("/inventory", response_model=Inventory)
def get_inventory(principal: PrincipalDep, services: ServicesDep) -> Inventory:
    """Every product with this partner's price and how many codes are available right now."""
    with services.db.read_session() as session:
        lines = service.inventory(session, principal.partner)
    return Inventory(data=[InventoryItem.of(line) for line in lines])

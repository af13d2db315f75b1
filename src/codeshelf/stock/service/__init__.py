"""Stock: importing codes (encrypted, deduplicated by fingerprint), inline or as background
jobs, allocating them to orders, revealing them to their partner, live inventory, and the
operator's reports (quality per batch and supplier, stock cover, quarantine and release).

Doors and other domains call these names from here.
"""

from codeshelf.stock.models import CodeState
from codeshelf.stock.service import floors, jobs, promises
from codeshelf.stock.service.allocation import (
    SANDBOX_STOCK,
    DeliveredCode,
    InsufficientStockError,
    InventoryLine,
    allocate,
    available_count,
    inventory,
    reveal,
)
from codeshelf.stock.service.cover import SALES_WINDOW_DAYS, StockCover, low_cover, stock_cover
from codeshelf.stock.service.imports import (
    BatchExistsError,
    ImportReport,
    IssueList,
    LineIssue,
    StrictImportRefusedError,
    batch_exists,
    import_codes,
    import_file,
    is_csv,
    read_code_lines,
)
from codeshelf.stock.service.lookup import (
    Provenance,
    StockCode,
    codes_of_batch,
    delivery_positions,
    find_on_items,
    lock_codes,
    move_codes,
    provenance,
)
from codeshelf.stock.service.reports import (
    BatchNotFoundError,
    BatchQuality,
    Released,
    SupplierQuality,
    available_by_sku,
    batch_quality,
    quarantine_batch,
    release_batch,
    summary,
    supplier_quality,
)

__all__ = [
    "SALES_WINDOW_DAYS",
    "SANDBOX_STOCK",
    "BatchExistsError",
    "BatchNotFoundError",
    "BatchQuality",
    "CodeState",
    "DeliveredCode",
    "ImportReport",
    "InsufficientStockError",
    "InventoryLine",
    "IssueList",
    "LineIssue",
    "Provenance",
    "Released",
    "StockCode",
    "StockCover",
    "StrictImportRefusedError",
    "SupplierQuality",
    "allocate",
    "available_by_sku",
    "available_count",
    "batch_exists",
    "batch_quality",
    "codes_of_batch",
    "delivery_positions",
    "find_on_items",
    "floors",
    "import_codes",
    "import_file",
    "inventory",
    "is_csv",
    "jobs",
    "lock_codes",
    "low_cover",
    "move_codes",
    "promises",
    "provenance",
    "quarantine_batch",
    "read_code_lines",
    "release_batch",
    "reveal",
    "stock_cover",
    "summary",
    "supplier_quality",
]

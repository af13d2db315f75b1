"""Stock: importing codes (encrypted, deduplicated by fingerprint), allocating them to orders,
revealing them to their partner, live inventory, and the operator's reports.

Doors and other domains call these names from here.
"""

from codeshelf.stock.models import CodeState
from codeshelf.stock.service import floors
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
    batch_quality,
    quarantine_batch,
    summary,
)

__all__ = [
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
    "StockCode",
    "StrictImportRefusedError",
    "allocate",
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
    "lock_codes",
    "move_codes",
    "provenance",
    "quarantine_batch",
    "read_code_lines",
    "reveal",
    "summary",
]

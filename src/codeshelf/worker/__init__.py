"""The background worker: the loop beside ``codeshelf serve``, and its passes.

Each pass serves what waits for stock (approved claims' replacements first, then backorders,
first come first served; late backorders fail), sends the webhooks that are due, and once an
hour purges idempotency keys and events past their retention. ``after_stock_arrives`` is the one
rule every door that brings stock in calls (the import, this loop, later a web upload).
"""

from codeshelf.worker.loop import run
from codeshelf.worker.passes import Served, after_stock_arrives

__all__ = ["Served", "after_stock_arrives", "run"]

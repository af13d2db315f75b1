"""A partner as the operator sees it (the console's Partners pages, ``codeshelf partner show``,
the admin API): composed from each domain's service, reading no table of its own."""

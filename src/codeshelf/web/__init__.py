"""The people's side: the partner portal under /account/, server-rendered (Jinja2 + htmx).

A door like the API: pages call the same domain services, and hold no business rule.
"""

# Every public route lives under this prefix. Each router spells out its full
# prefix (rather than being nested in a prefixed router) so that a matched
# route's `path` is the whole template, which the access log and metrics use.
API_PREFIX = "/api/v1"

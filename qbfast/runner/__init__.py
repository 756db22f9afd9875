"""Orchestration of a sweep spec on a Dask cluster: spec (parse, validate) -> plan (pure) ->
store (create, write, record) -> tasks (submit, watch, resume)."""

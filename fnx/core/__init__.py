"""The functional core: arrays, dtypes, primitives and their rules, tracing, pytrees, devices."""

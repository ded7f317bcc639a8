"""One module per dashboard page: `layout(ctx)` builds it, `register(app, ctx)` adds its callbacks."""

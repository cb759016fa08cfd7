"""The CLI's commands, one module per area; `tokensieve.cli` builds the app from them."""

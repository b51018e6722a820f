"""The core: knows nothing of Azure Functions; talks to the world through ports."""

"""Adapters: core's ports and runners on a particular technology (RQ on Redis).

An adapter may import core and store; core never imports an adapter (the web tier or
the CLI picks one from the configuration). See docs/architecture.md.
"""

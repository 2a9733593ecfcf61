"""The web tier. Its first import imports python-socketio without the libraries of its
clients and message queues (web/socketio_imports.py)."""

from .socketio_imports import import_socketio

import_socketio()

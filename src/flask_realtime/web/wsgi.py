"""The WSGI entry point for production servers:

    gunicorn -k gthread -w 1 --threads 100 -b 127.0.0.1:5001 'flask_realtime.web.wsgi:app'

One worker per process (Flask-SocketIO's threading mode keeps a client's Socket.IO
state in the process that accepted it); run several processes behind nginx for more
(docs/deployment.md). Configuration comes from the environment (docs/configuration.md).

Unlike ``flask-realtime run``, this starts no Webex simulator of its own: every web
process and worker must see the same one, so demo mode here means a
``flask-realtime webex-sim`` process and the settings that point at it.
"""

from __future__ import annotations

import atexit

from .. import collector, malloc
from ..logs import setup as setup_logging
from .app import apply_switch_interval, check_production_settings, create_app, shutdown

setup_logging()  # text or JSON lines on stderr (LOG_FORMAT), before the app logs
malloc.tune()  # freed heap goes back to the system after a run (flask_realtime/malloc.py)
app = create_app()
check_production_settings(app.config)
apply_switch_interval(app)
collector.settle()  # the startup heap out of the collector's way (flask_realtime/collector.py)
# A server without our gunicorn hooks (web/gunicorn_conf.py) still ends its runs as
# failed, never `running`, as the process exits; with them this does nothing more.
atexit.register(shutdown, app)

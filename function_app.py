"""The Azure Functions app: one FunctionApp, one blueprint per trigger.

Settings are checked at import, so a missing or malformed one stops the host at start-up with the
setting's name rather than failing the first request.
"""

import azure.functions as func

from cancel_function import bp as http_blueprint
from meeting_cancel.config import Settings
from queue_trigger import bp as queue_blueprint
from sweep_timer import bp as sweep_blueprint

Settings.from_environ()

app = func.FunctionApp()
app.register_functions(http_blueprint)
app.register_functions(queue_blueprint)
app.register_functions(sweep_blueprint)

"""The Function App: every function lives in a blueprint under ``functions/``."""

import azure.functions as func

from functions.batch import bp as batch_bp
from functions.deploy import bp as deploy_bp
from functions.docs import bp as docs_bp
from functions.health import bp as health_bp
from functions.ingest import bp as ingest_bp
from functions.promote import bp as promote_bp
from functions.runs import bp as runs_bp
from functions.score import bp as score_bp
from functions.status import bp as status_bp
from shared import heap

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (batch_bp, deploy_bp, docs_bp, health_bp, ingest_bp, promote_bp, runs_bp, score_bp, status_bp):
    app.register_functions(blueprint)

# Everything above lives as long as the process: out of the garbage collector's full passes.
heap.settle()

"""The serving baseline: a Flask page that does nothing, run by the same gunicorn the same way."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    return "<!doctype html><title>hello</title><p>Hello from a trivial Flask page.</p>"

"""The serving baseline: Flask pages that do nothing, run by the same gunicorn the same way."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
@app.route("/photos/<int:photo_id>")
def hello(photo_id: int = 0) -> str:
    """The same tiny page at the gallery's and the photo pages' URLs, so wrk can send both the same requests."""
    return "<!doctype html><title>hello</title><p>Hello from a trivial Flask page.</p>"


@app.route("/bytes/<int:size>")
def padded(size: int) -> str:
    """A page as long as a real one, to tell the cost of its bytes from the cost of making it."""
    return "<!doctype html><title>hello</title><p>" + "x" * max(0, size - 40)

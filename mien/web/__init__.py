"""The web app of `mien serve --http PORT`: a browser front end and a JSON API over the gRPC servicers."""

from mien.web.webapp import start_web, stop_web

__all__ = ["start_web", "stop_web"]

"""One router per concern; ``app.create_app`` includes them all."""

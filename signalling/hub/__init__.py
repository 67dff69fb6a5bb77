"""The room channel: websocket fan-out of comments, likes, votes and cards."""

"""Media plane: aiortc peers, forwarding without transcoding, keyframes, cascade."""

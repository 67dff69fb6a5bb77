"""HTTP and websocket front of livecore: REST, WHIP/WHEP, pages, the fan-out hub."""

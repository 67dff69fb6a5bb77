// Shared by the host and viewer pages: read the token from the URL fragment
// (never sent to the server in the URL) and show the room's public state.
export function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("token");
}

export function roomId() {
  return decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
}

export async function showRoom(el) {
  const id = roomId();
  try {
    const res = await fetch(`/api/rooms/${encodeURIComponent(id)}`);
    const body = await res.json();
    if (!res.ok) {
      el.innerHTML = `<p class="error"></p>`;
      el.querySelector("p").textContent = `${body.code}: ${body.message}`;
      return null;
    }
    document.title = `${body.title} · livecore`;
    document.querySelector("header h1").textContent = body.title;
    document.querySelector("header p").textContent = `${body.store} · ${body.status}`;
    el.innerHTML = `<dl><dt>Room</dt><dd></dd><dt>Starts</dt><dd></dd><dt>Host</dt><dd></dd></dl>`;
    const dd = el.querySelectorAll("dd");
    dd[0].textContent = body.id;
    dd[1].textContent = new Date(body.starts_at).toLocaleString();
    dd[2].textContent = body.host;
    return body;
  } catch (err) {
    el.innerHTML = `<p class="error">Cannot reach the server: ${String(err)}</p>`;
    return null;
  }
}

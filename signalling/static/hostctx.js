// What the host console's modules share: the room, the host token, the channel,
// and `act` (run a request from a button or form, toast a refusal).
import { RoomChannel } from "/static/channel.js";
import { linkToken, roomId } from "/static/boot.js";
import { errorText, toast } from "/static/room.js";

export const room = roomId();
export const token = linkToken();
export const channel = new RoomChannel({ room, token });
export const ui = { selected: null, communities: {}, demo: false };
export const me = () => (channel.model.you ? channel.model.you.user : null);

/** Run a request from a button or form: disables it meanwhile, toasts a refusal. */
export async function act(button, type, fields, done) {
  if (button) button.disabled = true;
  try {
    const ack = await channel.request(type, fields);
    if (done) done(ack);
    return ack;
  } catch (err) {
    toast(errorText(err));
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// The decision on a reply Meta has not confirmed: its send's answer was lost, so Meta may or may not have it, and
// only a person can say whether to send it again or leave it (POST …/messages/<id>/decision/, MessageDecisionApi).
// The bubble offers both while its status is unconfirmed; afterwards the status events move it on as any other
// (pending then sent…, or failed), and a status webhook that confirms the first try takes the offer away.
import { postJson } from "./api.js";
import { element } from "./format.js";

const CHOICES = [
  { decision: "send_again", label: "Send again" },
  { decision: "discard", label: "Discard" },
];

// Show or take away the offer as ``item``'s status is or is no longer unconfirmed. ``onDecided(message)`` gets
// the message as the server answered it, when no status event has moved the bubble on meanwhile.
export function updateDecision(item, status, onDecided) {
  const offer = item.querySelector(".decision");
  if (status !== "unconfirmed") {
    if (offer) offer.remove();
  } else if (!offer) {
    item.querySelector(".bubble").append(renderOffer(item, onDecided));
  }
}

function renderOffer(item, onDecided) {
  const offer = element("div", "decision");
  offer.setAttribute("role", "group");
  offer.setAttribute("aria-label", "Not confirmed by Meta");
  offer.append(element("p", "decision-note", "Meta's answer was lost: it may or may not have been delivered."));
  const buttons = element("div", "decision-buttons");
  const refusal = element("p", "decision-error");
  refusal.setAttribute("role", "alert");
  refusal.hidden = true;
  for (const { decision, label } of CHOICES) {
    const button = element("button", `decision-${decision.replace("_", "-")}`, label);
    button.type = "button";
    button.addEventListener("click", () => decide(item, offer, refusal, decision, onDecided));
    buttons.append(button);
  }
  offer.append(buttons, refusal);
  return offer;
}

async function decide(item, offer, refusal, decision, onDecided) {
  const buttons = offer.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  refusal.hidden = true;
  const url = `/api/conversations/${item.dataset.conversationId}/messages/${item.dataset.messageId}/decision/`;
  try {
    const message = await postJson(url, { decision });
    // A status event can come before the answer (the resend is quick): what it showed is newer.
    if (item.querySelector(".ticks").dataset.status === "unconfirmed") onDecided(message);
  } catch (error) {
    // E.g. 409 not_unconfirmed: a status webhook confirmed it meanwhile, and its event takes the offer away.
    refusal.textContent = error.detail || "The decision could not be saved. Try again.";
    refusal.hidden = false;
    for (const button of buttons) button.disabled = false;
  }
}

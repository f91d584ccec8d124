// The open conversation's place in the team's work, in the thread header: its status (resolve, mark pending,
// snooze, reopen) and its assignee (take, hand back, and for the number's supervisors assign to any member).
// Each control posts to the conversation's API; the answer, and the conversation.activity events of changes
// made elsewhere, redraw the header.
import { getJson, postJson } from "./api.js";
import { STATUS_LABELS, weekdayTimeLabel } from "./format.js";

const HOUR_MS = 60 * 60 * 1000;

// A date in the reader's calendar as YYYY-MM-DD (the server puts a date alone at 09:00 in time_zone).
function localDate(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

export class WorkflowControls {
  constructor({ root, conversation, user, role, onChange }) {
    this.root = root;
    this.conversation = conversation;
    this.user = user;
    this.supervisor = role === "supervisor";
    this.onChange = onChange;
    this.url = `/api/conversations/${conversation.id}`;
    this.$ = (selector) => root.querySelector(selector);
    this.error = this.$("#workflow-error");
    this.assignTo = this.$("#assign-to");
    for (const button of root.querySelectorAll("[data-status]")) {
      button.addEventListener("click", () => this.setStatus(button.dataset.status));
    }
    for (const button of root.querySelectorAll("[data-snooze]")) {
      button.addEventListener("click", () => this.snooze(button.dataset.snooze));
    }
    const tomorrow = new Date();
    tomorrow.setDate(tomorrow.getDate() + 1);
    this.$("#snooze-date").min = localDate(tomorrow);
    this.$("#take").addEventListener("click", () => this.take());
    this.$("#hand-back").addEventListener("click", () => this.handBack());
    if (this.supervisor) {
      this.assignTo.hidden = false;
      this.assignTo.addEventListener("change", () => {
        const value = this.assignTo.value;
        this.change(`${this.url}/assignee/`, { assignee: value ? Number(value) : null });
      });
      this.loadMembers().catch(() => {});
    }
    this.show(conversation);
  }

  async loadMembers() {
    const { results } = await getJson(`/api/numbers/${this.conversation.number.id}/members/`);
    const options = results.map((member) => {
      const option = document.createElement("option");
      option.value = String(member.id);
      option.textContent = member.online ? member.name : `${member.name} (offline)`;
      return option;
    });
    this.assignTo.replaceChildren(this.assignTo.options[0], ...options);
    this.show(this.conversation);
  }

  // Draw the conversation as it is now (from an API answer or an event).
  show(conversation) {
    this.conversation = { ...this.conversation, ...conversation };
    const { status, snoozed_until: until, assignee } = this.conversation;
    const badge = this.$("#status-badge");
    badge.textContent = status === "snoozed" && until ? `Snoozed until ${weekdayTimeLabel(until)}` : STATUS_LABELS[status] || status;
    badge.dataset.status = status;
    this.$("#assignee-name").textContent = assignee ? `Assigned to ${assignee.id === this.user.id ? "you" : assignee.name}` : "Unassigned";
    for (const button of this.root.querySelectorAll("[data-status]")) button.hidden = button.dataset.status === status;
    this.$("[data-status=open]").hidden = status === "open";
    this.$("#take").hidden = Boolean(assignee);
    this.$("#hand-back").hidden = !assignee || assignee.id !== this.user.id;
    if (this.supervisor) this.assignTo.value = assignee ? String(assignee.id) : "";
  }

  take() {
    return this.change(`${this.url}/take/`);
  }

  handBack() {
    return this.change(`${this.url}/hand-back/`);
  }

  setStatus(status) {
    return this.change(`${this.url}/status/`, { status });
  }

  snooze(kind) {
    const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    let until;
    if (kind === "hour") {
      until = new Date(Date.now() + HOUR_MS).toISOString();
    } else if (kind === "tomorrow") {
      const tomorrow = new Date();
      tomorrow.setDate(tomorrow.getDate() + 1);
      until = localDate(tomorrow);
    } else {
      until = this.$("#snooze-date").value;
      if (!until) {
        this.showError("Pick a date to snooze until.");
        this.$("#snooze-date").focus();
        return Promise.resolve();
      }
    }
    return this.change(`${this.url}/status/`, { status: "snoozed", snooze_until: until, time_zone: timeZone })
      .then(() => { this.$("#snooze").open = false; });
  }

  async change(url, body = {}) {
    this.error.hidden = true;
    try {
      const conversation = await postJson(url, body);
      this.show(conversation);
      if (this.onChange) this.onChange(conversation);
    } catch (error) {
      this.showError(error.detail || "That did not work; try again.");
      this.show(this.conversation);
    }
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = false;
  }

  focusSnooze() {
    const snooze = this.$("#snooze");
    snooze.open = true;
    snooze.querySelector("button").focus();
  }

  focusAssignee() {
    const target = this.supervisor ? this.assignTo : [this.$("#take"), this.$("#hand-back")].find((b) => !b.hidden);
    if (target) target.focus();
    return Boolean(target);
  }
}

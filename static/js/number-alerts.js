// The inbox's banners of number alerts (conversations/alerts.py): the server renders the open ones; a
// number.alerts_changed event carries a number's open alerts as they are now. Meta's words only as text.
export class NumberAlerts {
  constructor({ root, alerts }) {
    this.root = root;
    this.byNumber = new Map();
    for (const alert of alerts) {
      if (!this.byNumber.has(alert.number_id)) this.byNumber.set(alert.number_id, []);
      this.byNumber.get(alert.number_id).push(alert);
    }
  }

  set(numberId, alerts) {
    this.byNumber.set(numberId, alerts);
    this.render();
  }

  render() {
    const banners = [];
    for (const alerts of this.byNumber.values()) {
      for (const alert of alerts) {
        const banner = document.createElement("div");
        banner.className = "number-alert";
        banner.setAttribute("role", "alert");
        banner.dataset.numberId = String(alert.number_id);
        banner.dataset.kind = alert.kind;
        const title = document.createElement("strong");
        title.textContent = alert.title;
        banner.append(title);
        if (alert.template) banner.append(` (${alert.template})`);
        const advice = document.createElement("p");
        advice.textContent = alert.advice;
        banner.append(advice);
        if (alert.detail) {
          const detail = document.createElement("p");
          detail.className = "alert-detail";
          detail.textContent = `Meta: ${alert.detail}`;
          banner.append(detail);
        }
        banners.push(banner);
      }
    }
    this.root.replaceChildren(...banners);
    this.root.hidden = banners.length === 0;
  }
}

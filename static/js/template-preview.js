// A template's message as the customer will see it, filled in with the values given so far (text only: never
// HTML). The composer previews a stored template with the agent's values; the Templates page previews the
// one being written with its examples. ``values`` are by slot key: "header", "body.1", "body.first_name".
import { element } from "./format.js";

// A parameter in a template's text: {{1}} or {{first_name}} (the Templates page reads the names with it too).
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

export function renderTemplatePreview(container, template, values = {}) {
  container.replaceChildren();
  if (!template) return;
  const fill = (text, prefix) => text.replace(PLACEHOLDER, (match, name) => values[`${prefix}${name}`] || match);
  if (template.header) {
    const media = template.header.format !== "TEXT";
    container.append(element("div", "template-preview-header", media ? `[${template.header.format.toLowerCase()}]` : template.header.text.replace(/\{\{[^{}]*\}\}/, (m) => values.header || m)));
  }
  container.append(element("div", "template-preview-body", fill(template.body, "body.")));
  if (template.footer) container.append(element("div", "template-preview-footer", template.footer));
  for (const button of template.buttons) {
    container.append(element("div", "template-preview-button", button.text || (button.type === "COPY_CODE" ? "Copy offer code" : button.type)));
  }
}

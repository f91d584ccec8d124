// A number's Templates page: the account's templates with Meta's status and reason, a form to create or edit
// one with a live preview, and deletion after a confirmation, all through /api/numbers/<id>/templates/.
// A template.updated event redraws the rows. Meta's words are set as text only.
import { deleteJson, getJson, postForm, postJson } from "./api.js";
import { EVENTS } from "./events.js";
import { element } from "./format.js";
import { InboxSocket, showsConnectionIn } from "./socket.js";
import { PLACEHOLDER, renderTemplatePreview } from "./template-preview.js";

const data = JSON.parse(document.getElementById("templates-data").textContent);
const url = `/api/numbers/${data.numberId}/templates/`;
const editable = new Set(data.editable);
const REASONED = new Set(["REJECTED", "PAUSED", "DISABLED"]);
const MEDIA = new Set(["IMAGE", "VIDEO", "DOCUMENT"]);
const ACCEPTS = { IMAGE: "image/jpeg,image/png", VIDEO: "video/mp4", DOCUMENT: "application/pdf" };
const BUTTON_LABELS = { QUICK_REPLY: "Quick reply", URL: "Link", PHONE_NUMBER: "Phone number", COPY_CODE: "Copy code" };

const $ = (id) => document.getElementById(id);
const form = $("template-editor");
const rows = $("template-rows");
let items = data.templates;
let editing = null; // the template being edited, or null for a new one
let buttonCount = 0;
let pendingDelete = null;

// --- the list ------------------------------------------------------------------------------------------

function reasonText(item) {
  if (!REASONED.has(item.template.status)) return "";
  return item.status_detail ? `${item.status_reason}: ${item.status_detail}` : item.status_reason;
}

function fillRow(row, item) {
  const t = item.template;
  row.dataset.status = t.status;
  const cells = { name: t.name, language: t.language, category: t.category, status: t.status, quality: item.quality_score || "not rated", reason: reasonText(item) };
  for (const [name, text] of Object.entries(cells)) row.querySelector(`[data-cell="${name}"]`).textContent = text;
  const actions = row.querySelector('[data-cell="actions"]');
  actions.replaceChildren();
  if (editable.has(t.status)) {
    const edit = element("button", "template-edit", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit ${t.name} (${t.language})`);
    edit.addEventListener("click", () => openEditor(item));
    actions.append(edit);
  }
  const remove = element("button", "template-delete", "Delete");
  remove.type = "button";
  remove.setAttribute("aria-label", `Delete ${t.name} (${t.language})`);
  remove.addEventListener("click", () => askDelete(item));
  actions.append(remove);
}

function newRow(item) {
  const row = element("tr");
  row.id = `template-${item.template.id}`;
  for (const name of ["name", "language", "category", "status", "quality", "reason", "actions"]) {
    const cell = element("td");
    cell.dataset.cell = name;
    row.append(cell);
  }
  return row;
}

function renderRows() {
  const kept = new Set();
  for (const item of items) {
    const row = $(`template-${item.template.id}`) || newRow(item);
    fillRow(row, item);
    rows.append(row); // in the API's order
    kept.add(row.id);
  }
  for (const row of [...rows.children]) if (!kept.has(row.id)) row.remove();
  $("templates-empty").hidden = items.length > 0;
}

async function reload() {
  try {
    items = (await getJson(url)).results;
    renderRows();
  } catch {
    // The server is away: the next event reads again.
  }
}

// --- the form ------------------------------------------------------------------------------------------

function clearErrors() {
  for (const node of form.querySelectorAll(".field-error, .form-error")) {
    node.textContent = "";
    node.hidden = true;
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// The API names the field at fault ("body.text", "buttons.1.url"): its message goes right under that field.
function showErrors(failure) {
  const fields = Object.entries(failure.fields || {});
  let shown = false;
  for (const [field, messages] of fields) {
    const target = form.querySelector(`.field-error[data-field="${CSS.escape(field)}"]`)
      || form.querySelector(`.field-error[data-field="${CSS.escape(field.split(".").slice(0, 2).join("."))}"]`)
      || form.querySelector(`.field-error[data-field="${CSS.escape(field.split(".")[0])}"]`);
    if (!target) continue;
    target.textContent = messages.join(" ");
    target.hidden = false;
    const input = form.querySelector(`[aria-describedby~="${target.id}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
    shown = true;
  }
  if (!shown) {
    $("tpl-form-error").textContent = failure.detail || "Meta could not be reached. Try again.";
    $("tpl-form-error").hidden = false;
  }
}

function parameterNames(text) {
  const names = [];
  for (const match of text.matchAll(PLACEHOLDER)) if (!names.includes(match[1])) names.push(match[1]);
  return names;
}

// One example input per parameter of the body, kept by name while the body is typed.
function renderExamples() {
  const fieldset = $("tpl-body-examples");
  const names = parameterNames($("tpl-body").value);
  const current = new Map([...fieldset.querySelectorAll("input")].map((input) => [input.dataset.name, input.value]));
  for (const node of fieldset.querySelectorAll(".tpl-example")) node.remove();
  $("tpl-body-examples-none").hidden = names.length > 0;
  for (const name of names) {
    const wrap = element("div", "tpl-example");
    const input = element("input");
    input.id = `tpl-example-${name.replace(/\W/g, "-")}`;
    input.dataset.name = name;
    input.value = current.get(name) || "";
    input.setAttribute("aria-describedby", "tpl-body-examples-error");
    const label = element("label", null, `Example for {{${name}}}`);
    label.htmlFor = input.id;
    input.addEventListener("input", renderPreview);
    wrap.append(label, input);
    fieldset.append(wrap);
  }
}

function buttonField(item, index, key, labelText, value = "") {
  const input = element("input");
  input.id = `tpl-button-${index}-${key}`;
  input.dataset.key = key;
  input.value = value;
  const errorId = `tpl-button-${index}-${key}-error`;
  input.setAttribute("aria-describedby", errorId);
  input.addEventListener("input", renderPreview);
  const label = element("label", null, labelText);
  label.htmlFor = input.id;
  const error = element("p", "field-error");
  error.id = errorId;
  error.hidden = true;
  item.append(label, input, error);
  return error;
}

function addButton(kind, values = {}) {
  const index = buttonCount++;
  const item = element("li", "tpl-button");
  item.dataset.kind = kind;
  item.append(element("strong", null, BUTTON_LABELS[kind]));
  if (kind !== "COPY_CODE") buttonField(item, index, "text", "Button label", values.text);
  if (kind === "URL") {
    buttonField(item, index, "url", "Address (end it with {{1}} for a dynamic ending)", values.url);
    buttonField(item, index, "example", "Example of the whole address, its ending filled in", values.example);
  }
  if (kind === "PHONE_NUMBER") buttonField(item, index, "phone_number", "Phone number (+E.164)", values.phone_number);
  if (kind === "COPY_CODE") buttonField(item, index, "example", "Example code", values.example);
  const remove = element("button", null, "Remove");
  remove.type = "button";
  remove.setAttribute("aria-label", `Remove the ${BUTTON_LABELS[kind]} button`);
  remove.addEventListener("click", () => {
    item.remove();
    numberButtonErrors();
    renderPreview();
  });
  item.append(remove);
  $("tpl-button-list").append(item);
  numberButtonErrors();
  renderPreview();
}

// A button's errors come back as buttons.<position>.<field>: each error node is named by its current position.
function numberButtonErrors() {
  [...$("tpl-button-list").children].forEach((item, position) => {
    for (const input of item.querySelectorAll("input")) {
      const error = document.getElementById(input.getAttribute("aria-describedby"));
      error.dataset.field = `buttons.${position}.${input.dataset.key}`;
    }
  });
}

function headerFormat() {
  return $("tpl-header-format").value;
}

function renderHeaderFields() {
  const format = headerFormat();
  $("tpl-header-text-fields").hidden = format !== "TEXT";
  $("tpl-header-file-fields").hidden = !MEDIA.has(format);
  $("tpl-header-file").accept = ACCEPTS[format] || "";
  renderPreview();
}

function definition() {
  const format = headerFormat();
  const bodyText = $("tpl-body").value;
  const names = parameterNames(bodyText);
  const inputs = [...$("tpl-body-examples").querySelectorAll("input")];
  const named = names.some((name) => !/^\d+$/.test(name));
  const examples = named
    ? Object.fromEntries(inputs.map((input) => [input.dataset.name, input.value]))
    : inputs.map((input) => input.value);
  const headerName = parameterNames($("tpl-header-text").value)[0];
  const headerExample = $("tpl-header-example").value;
  const header = format === "TEXT"
    ? { format, text: $("tpl-header-text").value, ...(headerName ? { example: /^\d+$/.test(headerName) ? [headerExample] : { [headerName]: headerExample } } : {}) }
    : format ? { format } : null;
  const buttons = [...$("tpl-button-list").children].map((item) => {
    const button = { type: item.dataset.kind };
    for (const input of item.querySelectorAll("input")) if (input.value) button[input.dataset.key] = input.value;
    return button;
  });
  return {
    name: $("tpl-name").value.trim(),
    language: $("tpl-language").value.trim(),
    category: $("tpl-category").value,
    ...(header ? { header } : {}),
    body: { text: bodyText, examples },
    ...($("tpl-footer").value ? { footer: $("tpl-footer").value } : {}),
    ...(buttons.length ? { buttons } : {}),
  };
}

// The preview fills the parameters with their examples, as Meta's reviewers and the customer will read it.
function renderPreview() {
  const spec = definition();
  const values = {};
  for (const input of $("tpl-body-examples").querySelectorAll("input")) values[`body.${input.dataset.name}`] = input.value;
  if (spec.header?.example) values.header = $("tpl-header-example").value;
  const preview = {
    header: spec.header ? { format: spec.header.format, text: spec.header.text || "" } : null,
    body: spec.body.text,
    footer: spec.footer || "",
    buttons: (spec.buttons || []).map((b) => ({ type: b.type, text: b.text || "" })),
  };
  renderTemplatePreview($("tpl-preview"), preview, values);
}

function openEditor(item = null) {
  editing = item;
  form.reset();
  clearErrors();
  $("tpl-button-list").replaceChildren();
  const t = item?.template;
  $("editor-title").textContent = t ? `Edit ${t.name} (${t.language})` : "New template";
  $("tpl-submit").textContent = t ? "Submit the changes to Meta" : "Submit to Meta";
  $("tpl-name").disabled = Boolean(t);
  $("tpl-language").disabled = Boolean(t);
  if (t) {
    $("tpl-name").value = t.name;
    $("tpl-language").value = t.language;
    $("tpl-category").value = t.category;
    $("tpl-header-format").value = t.header ? t.header.format : "";
    $("tpl-header-text").value = t.header?.text || "";
    $("tpl-body").value = t.body;
    $("tpl-footer").value = t.footer;
  }
  renderHeaderFields();
  renderExamples();
  if (t) {
    const header = t.slots.find((slot) => slot.part === "header" && slot.kind === "text");
    if (header) $("tpl-header-example").value = header.example;
    for (const slot of t.slots.filter((s) => s.part === "body")) {
      const input = $("tpl-body-examples").querySelector(`input[data-name="${CSS.escape(slot.name)}"]`);
      if (input) input.value = slot.example;
    }
    t.buttons.forEach((button, index) => {
      const slot = t.slots.find((s) => s.key === `button.${index}`);
      addButton(button.type, { ...button, example: slot?.example || "" });
    });
  }
  form.hidden = false;
  $("new-template").hidden = true;
  renderPreview();
  (t ? $("tpl-category") : $("tpl-name")).focus();
}

function closeEditor() {
  form.hidden = true;
  $("new-template").hidden = false;
  editing = null;
  $("new-template").focus();
}

async function submit(event) {
  event.preventDefault();
  clearErrors();
  const spec = definition();
  const file = $("tpl-header-file").files[0];
  const target = editing ? `${url}${editing.template.id}/` : url;
  $("tpl-submit").disabled = true;
  try {
    if (MEDIA.has(headerFormat()) && file) {
      const body = new FormData();
      body.append("definition", JSON.stringify(spec));
      body.append("header_file", file);
      await postForm(target, body);
    } else {
      await postJson(target, spec);
    }
    closeEditor();
    await reload();
  } catch (failure) {
    showErrors(failure);
  } finally {
    $("tpl-submit").disabled = false;
  }
}

// --- deletion --------------------------------------------------------------------------------------------

function askDelete(item) {
  pendingDelete = item;
  $("delete-text").textContent = `${item.template.name} (${item.template.language}) is deleted at Meta. Meta keeps its name taken for 30 days.`;
  $("delete-error").hidden = true;
  $("delete-dialog").showModal();
}

async function confirmDelete() {
  try {
    await deleteJson(`${url}${pendingDelete.template.id}/`);
    $("delete-dialog").close();
    await reload();
  } catch (failure) {
    $("delete-error").textContent = failure.detail || "The template could not be deleted. Try again.";
    $("delete-error").hidden = false;
  }
}

$("new-template").addEventListener("click", () => openEditor(null));
$("tpl-cancel").addEventListener("click", closeEditor);
$("tpl-add-button").addEventListener("click", () => addButton($("tpl-add-button-kind").value));
$("tpl-header-format").addEventListener("change", renderHeaderFields);
$("tpl-body").addEventListener("input", () => {
  renderExamples();
  renderPreview();
});
for (const id of ["tpl-header-text", "tpl-header-example", "tpl-footer"]) $(id).addEventListener("input", renderPreview);
form.addEventListener("submit", submit);
$("delete-confirm").addEventListener("click", confirmDelete);
$("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
renderRows();

const socket = new InboxSocket({
  lastEventId: data.lastEventId,
  onEvent: (event) => {
    if (event.type === EVENTS.TEMPLATE_UPDATED && event.number_id === data.numberId) reload();
  },
  onStateChange: showsConnectionIn($("connection-state")),
});
socket.connect();

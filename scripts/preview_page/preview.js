// Lays out the previews in index.html (written by scripts/preview.py): Teams cards through Microsoft's
// own renderer (the adaptivecards package, loaded before this file), Slack Block Kit messages in a
// simple layout of their blocks. Event text is only ever inserted as text, never parsed as HTML.
"use strict";

function payloadOf(article) {
  return JSON.parse(article.querySelector("script.payload").textContent);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- Teams: Adaptive Cards --------------------------------------------------------------------

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Teams reads TextBlock text as Markdown; the renderer shows raw text unless given a processor. This
// one knows what the app writes: backslash escapes, **bold**, _italic_ and "- " list lines.
function markdownToHtml(text) {
  const placeholders = [];
  const kept = text.replace(/\\([\\`*_{}\[\]()<>#+\-.!|~])/g, (_, c) => {
    placeholders.push(c);
    return "\u0000" + (placeholders.length - 1) + "\u0000";
  });
  let html = escapeHtml(kept)
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|\s)_([^_]+)_(?=\s|$)/g, "$1<em>$2</em>");
  const lines = html.split("\n");
  if (lines.length > 1 && lines.every((line) => line.startsWith("- "))) {
    html = "<ul>" + lines.map((line) => "<li>" + line.slice(2) + "</li>").join("") + "</ul>";
  } else {
    html = lines.join("<br>");
  }
  return html.replace(/\u0000(\d+)\u0000/g, (_, i) => escapeHtml(placeholders[Number(i)]));
}

function renderAdaptiveCard(article, target) {
  const message = payloadOf(article);
  const attachment = (message.attachments || [])[0] || {};
  const card = new AdaptiveCards.AdaptiveCard();
  AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
    result.outputHtml = markdownToHtml(text);
    result.didProcess = true;
  };
  card.onExecuteAction = (action) => {
    if (action instanceof AdaptiveCards.OpenUrlAction && /^https?:/i.test(action.url)) {
      window.open(action.url, "_blank", "noopener");
    }
  };
  card.parse(attachment.content);
  const rendered = card.render();
  if (!rendered) throw new Error("the Adaptive Card renderer returned nothing");
  target.appendChild(rendered);
}

// ---- Slack: Block Kit ---------------------------------------------------------------------------

const SLACK_EMOJI = {
  ":red_circle:": "\u{1F534}", ":large_green_circle:": "\u{1F7E2}", ":warning:": "\u26A0\uFE0F",
  ":information_source:": "\u2139\uFE0F",
};

// Slack mrkdwn as DOM nodes: *bold*, _italic_, `code`, <url|label> links, &amp; &lt; &gt;, newlines.
function appendMrkdwn(parent, text) {
  // Bold and italic markers count only at word edges, as in Slack: run_name_1 stays as written.
  const pattern = /((?<![\w*])\*[^*\n]+\*(?![\w*])|(?<![\w_])_[^_\n]+_(?![\w_])|`[^`\n]+`|<[^>\n]+>|:[a-z_]+:|\n)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    appendSlackText(parent, text.slice(last, match.index));
    const token = match[0];
    if (token === "\n") parent.appendChild(document.createElement("br"));
    else if (token.startsWith("*")) appendSlackText(parent.appendChild(element("strong")), token.slice(1, -1));
    else if (token.startsWith("_")) appendSlackText(parent.appendChild(element("em")), token.slice(1, -1));
    else if (token.startsWith("`")) appendSlackText(parent.appendChild(element("code")), token.slice(1, -1));
    else if (token.startsWith(":")) parent.appendChild(document.createTextNode(SLACK_EMOJI[token] || token));
    else {
      const [url, label] = token.slice(1, -1).split("|", 2);
      if (/^https?:/i.test(url)) {
        const link = parent.appendChild(element("a"));
        link.href = url;
        appendSlackText(link, label || url);
      } else appendSlackText(parent, token);
    }
    last = match.index + token.length;
  }
  appendSlackText(parent, text.slice(last));
}

function appendSlackText(parent, text) {
  const decoded = text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  if (decoded) parent.appendChild(document.createTextNode(decoded));
}

function appendTextObject(parent, object) {
  if (!object) return;
  if (object.type === "mrkdwn") appendMrkdwn(parent, object.text || "");
  else parent.appendChild(document.createTextNode(object.text || ""));
}

function renderSlackBlock(block) {
  const node = element("div", "slack-block slack-" + block.type);
  if (block.type === "header") {
    appendTextObject(node.appendChild(element("h4")), block.text);
  } else if (block.type === "context") {
    for (const item of block.elements || []) appendTextObject(node.appendChild(element("span")), item);
  } else if (block.type === "section") {
    if (block.text) appendTextObject(node.appendChild(element("div", "slack-text")), block.text);
    if (block.fields) {
      const grid = node.appendChild(element("div", "slack-fields"));
      for (const field of block.fields) appendTextObject(grid.appendChild(element("div")), field);
    }
  } else if (block.type === "actions") {
    for (const item of block.elements || []) {
      const button = node.appendChild(element("a", "slack-button" + (item.style ? " " + item.style : "")));
      if (/^https?:/i.test(item.url || "")) button.href = item.url;
      button.target = "_blank";
      button.rel = "noopener";
      appendTextObject(button, item.text);
    }
  } else if (block.type === "divider") {
    node.appendChild(document.createElement("hr"));
  } else {
    node.appendChild(element("pre", null, JSON.stringify(block, null, 2)));
  }
  return node;
}

function renderSlack(article, target) {
  const message = payloadOf(article);
  const box = target.appendChild(element("div", "slack-message"));
  if (!message.blocks || !message.blocks.length) appendMrkdwn(box, message.text || "");
  for (const block of message.blocks || []) box.appendChild(renderSlackBlock(block));
  const fallback = target.appendChild(element("p", "slack-fallback", "Notification text: "));
  appendSlackText(fallback, message.text || "");
}

// ---- page ---------------------------------------------------------------------------------------

const RENDERERS = { "adaptive-card": renderAdaptiveCard, "slack": renderSlack };

document.addEventListener("DOMContentLoaded", () => {
  for (const article of document.querySelectorAll("article[data-view]")) {
    const render = RENDERERS[article.dataset.view];
    if (!render) continue;
    const target = article.querySelector(".rendered");
    try {
      render(article, target);
      article.dataset.rendered = "yes";
    } catch (error) {
      target.appendChild(element("p", "render-error", "Could not render: " + error.message));
      article.dataset.rendered = "error";
    }
  }
  document.body.dataset.ready = "yes";
});

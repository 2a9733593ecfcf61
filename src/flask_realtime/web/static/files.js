// A finished run's files (its artifacts): PNG and JPEG pictures shown as images, and
// every file as a download link. Names are text nodes; a picture's <img> loads from
// /api/runs/<id>/pictures/<name>, which serves only PNG and JPEG (by their first
// bytes), so an SVG is never drawn inline: it is a download like any other file.

import { runUrl } from "./api.js";
import { sizeText } from "./form.js";

function fileUrl(runId, kind, name) {
  return runUrl(runId, `/${kind}/${name.split("/").map(encodeURIComponent).join("/")}`);
}

// Fill `container` (the #files section) with `run`'s artifacts; hidden when it has none.
export function renderFiles(container, run) {
  const artifacts = (run && run.artifacts) || [];
  const pictures = container.querySelector("#files-pictures");
  const list = container.querySelector("#files-list");
  pictures.replaceChildren(...artifacts.filter((a) => a.picture === "png" || a.picture === "jpeg")
    .map((a) => {
      const figure = document.createElement("figure");
      figure.className = "picture";
      const img = document.createElement("img");
      img.src = fileUrl(run.id, "pictures", a.name);
      img.alt = a.name;
      img.loading = "lazy";
      const caption = document.createElement("figcaption");
      caption.textContent = a.name;
      figure.append(img, caption);
      return figure;
    }));
  list.replaceChildren(...artifacts.map((a) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = fileUrl(run.id, "artifacts", a.name);
    link.setAttribute("download", "");
    link.textContent = a.name;
    const size = document.createElement("span");
    size.className = "file-size";
    size.textContent = ` ${sizeText(a.size)}`;
    item.append(link, size);
    return item;
  }));
  container.hidden = artifacts.length === 0;
}

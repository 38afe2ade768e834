// Files on the pages: the forms' file fields (pick, drop or paste a screenshot) and drawing a
// message's attachments from its representation (portal.js and workspace.js use `fileList`).
// Without this script the file input still works: the form posts multipart/form-data.
(function () {
  "use strict";

  function humanSize(size) {
    if (size < 1024) return size + " bytes";
    if (size < 1048576) return Math.round(size / 1024) + " KB";
    return (size / 1048576).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  // What a file the malware scan withholds says instead of its thumbnail (as the macro).
  const SCAN_NOTES = {
    pending: "Being scanned for malware",
    infected: "Quarantined: malware found",
    failed: "Withheld: could not be scanned",
  };

  // The same markup as the `file_list` macro in templates/_files.html.
  function fileList(files) {
    const list = document.createElement("ul");
    list.className = "files";
    list.setAttribute("aria-label", "Attached files");
    for (const f of files || []) {
      const item = document.createElement("li");
      item.className = "file" + (f.is_image ? " file-image" : "");
      item.dataset.attachmentId = f.id;
      const withheld = SCAN_NOTES[f.scan_status];
      if (f.is_image && !withheld) {
        const link = document.createElement("a");
        link.href = f.page_url;
        link.className = "file-thumb";
        link.target = "_blank";
        link.rel = "noopener";
        link.title = "Open " + f.name + " full size";
        const img = document.createElement("img");
        img.src = f.thumbnail_url || f.page_url;
        img.alt = f.name;
        img.loading = "lazy";
        link.append(img);
        item.append(link);
      }
      const name = document.createElement("a");
      name.href = f.page_url;
      name.className = "file-name";
      if (!f.is_image) name.setAttribute("download", "");
      name.textContent = f.name;
      const meta = document.createElement("small");
      meta.className = "file-meta";
      meta.textContent = f.content_type + ", " + humanSize(f.size);
      item.append(" ", name, " ", meta);
      if (withheld) {
        const note = document.createElement("small");
        note.className = "file-scan file-scan-" + f.scan_status;
        note.textContent = withheld;
        item.append(" ", note);
      }
      list.append(item);
    }
    return list;
  }

  function pad(n) { return String(n).padStart(2, "0"); }
  function screenshotName(file) {
    const d = new Date();
    const ext = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
    return `screenshot-${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}-` +
      `${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}.${ext}`;
  }

  function fileField(box) {
    const input = box.querySelector('input[type="file"]');
    const chosen = box.querySelector("[data-chosen-files]");
    const error = box.querySelector("[data-file-error]");
    const form = box.closest("form");
    const maxBytes = Number(box.dataset.maxBytes);
    const maxFiles = Number(box.dataset.maxFiles);
    if (!input || !form) return;

    function problems() {
      const files = Array.from(input.files);
      const found = [];
      if (files.length > maxFiles) found.push(`Attach at most ${maxFiles} files.`);
      for (const f of files) {
        if (f.size > maxBytes) found.push(`${f.name} is too large: files may be at most ${humanSize(maxBytes)}.`);
      }
      return found;
    }

    function refresh() {
      chosen.replaceChildren();
      Array.from(input.files).forEach((f, index) => {
        const item = document.createElement("li");
        item.textContent = `${f.name} (${humanSize(f.size)}) `;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "secondary small";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + f.name);
        remove.addEventListener("click", () => removeAt(index));
        item.append(remove);
        chosen.append(item);
      });
      const found = problems();
      error.textContent = found.join(" ");
      error.hidden = found.length === 0;
      if (found.length) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
      } else {
        input.removeAttribute("aria-invalid");
      }
    }

    function setFiles(files) {
      const transfer = new DataTransfer();
      files.forEach((f) => transfer.items.add(f));
      input.files = transfer.files;
      refresh();
    }
    function addFiles(files) { setFiles(Array.from(input.files).concat(Array.from(files))); }
    function removeAt(index) { setFiles(Array.from(input.files).filter((_, i) => i !== index)); }

    input.addEventListener("change", refresh);
    form.addEventListener("dragover", (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      form.classList.add("is-dropping");
    });
    form.addEventListener("dragleave", () => form.classList.remove("is-dropping"));
    form.addEventListener("drop", (event) => {
      form.classList.remove("is-dropping");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      addFiles(event.dataTransfer.files);
    });
    form.addEventListener("paste", (event) => {
      const data = event.clipboardData;
      if (!data || !data.files.length) return;
      const pasted = Array.from(data.files).map((f) =>
        f.type.startsWith("image/") ? new File([f], screenshotName(f), { type: f.type }) : f);
      if (!data.types.includes("text/plain")) event.preventDefault();
      addFiles(pasted);
    });
    // Registered before the page's own submit handler: a file that cannot be sent stops it.
    form.addEventListener("submit", (event) => {
      if (problems().length) {
        event.preventDefault();
        event.stopImmediatePropagation();
        refresh();
        input.focus();
      }
    });
    if (!error.hidden && error.textContent) {
      input.setAttribute("aria-invalid", "true");
    }
  }

  function hasFiles(form) {
    const input = form && form.querySelector('[data-file-field] input[type="file"]');
    return Boolean(input && input.files && input.files.length);
  }

  window.AutoCRMFiles = { fileList, hasFiles, humanSize };
  document.querySelectorAll("[data-file-field]").forEach(fileField);
})();

"""The report: text and tables, the conclusion in words, figures, the digit demo, the HTML/PDF
rendering and publishing it back to the store."""

"""Invoice PDFs, drawn with fpdf2.

`render_invoice_pdf` is plain CPU work (building the page, subsetting the
font): call it through `asyncio.to_thread`, never on the event loop.

Text is set in DejaVu Sans when the system has it (Debian's fonts-dejavu-core,
present on every machine this project runs on), so client names in any
European script print as they are. Without it the PDF falls back to the PDF
core font Helvetica, which only knows Latin-1: other characters are printed
as "?" rather than failing the download.
"""

from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

AGENCY_NAME = "Monoliet"
FONT_DIRECTORIES = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
)


@dataclass(frozen=True)
class InvoiceDocument:
    """What the PDF shows, already formatted as text."""

    invoice_number: str
    company_name: str
    contact_name: str
    invoice_type: str
    amount: str
    due_date: str
    status: str
    paid_date: str
    issued_on: str


def _font_files() -> tuple[Path, Path] | None:
    for folder in FONT_DIRECTORIES:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


class _InvoicePage:
    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=20)
        fonts = _font_files()
        if fonts is None:
            self.family, self.unicode = "helvetica", False
        else:
            self.pdf.add_font("dejavu", "", str(fonts[0]))
            self.pdf.add_font("dejavu", "B", str(fonts[1]))
            self.family, self.unicode = "dejavu", True

    def text(self, value: str) -> str:
        if self.unicode:
            return value
        return value.encode("latin-1", errors="replace").decode("latin-1")

    def line(
        self, value: str, *, size: int = 11, bold: bool = False, height: float = 7
    ) -> None:
        self.pdf.set_font(self.family, "B" if bold else "", size)
        # multi_cell wraps a long client name instead of running off the page.
        self.pdf.multi_cell(0, height, self.text(value), new_x="LMARGIN", new_y="NEXT")

    def row(self, label: str, value: str) -> None:
        self.pdf.set_font(self.family, "B", 11)
        self.pdf.cell(50, 8, self.text(label))
        self.pdf.set_font(self.family, "", 11)
        self.pdf.multi_cell(0, 8, self.text(value), new_x="LMARGIN", new_y="NEXT")


def render_invoice_pdf(document: InvoiceDocument) -> bytes:
    """The invoice as a one-page A4 PDF."""
    page = _InvoicePage()
    pdf = page.pdf
    pdf.set_title(page.text(f"Invoice {document.invoice_number}"))
    pdf.set_author(AGENCY_NAME)
    pdf.set_creator(f"{AGENCY_NAME} client portal")
    pdf.add_page()

    page.line(AGENCY_NAME, size=22, bold=True, height=12)
    pdf.ln(8)
    page.line(f"Invoice {document.invoice_number}", size=16, bold=True, height=10)
    page.line(f"Issued on {document.issued_on}", size=10)
    pdf.ln(6)

    page.line("Billed to", size=11, bold=True)
    page.line(document.company_name)
    page.line(f"Attn. {document.contact_name}")
    pdf.ln(6)

    page.row("Invoice number", document.invoice_number)
    page.row("Type", document.invoice_type)
    page.row("Amount", document.amount)
    page.row("Due date", document.due_date)
    page.row("Status", document.status)
    page.row("Paid date", document.paid_date)
    return bytes(pdf.output())

"""The bench's table: each figure with its conditions, its target and the ratio to it."""

from dataclasses import dataclass


@dataclass
class Row:
    section: str
    figure: str
    value: float | None
    unit: str
    conditions: str
    target: float | None = None
    higher_is_better: bool = True

    def value_text(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if abs(self.value) >= 100 or float(self.value).is_integer():
            return f"{self.value:,.0f} {self.unit}".strip()
        return f"{self.value:,.1f} {self.unit}".strip()

    def target_text(self) -> str:
        if self.target is None:
            return ""
        sign = ">=" if self.higher_is_better else "<="
        return f"{sign} {self.target:,.0f} {self.unit}".strip()

    def ratio_text(self) -> str:
        if self.target is None or self.value is None:
            return ""
        if self.higher_is_better:
            ratio = self.value / self.target if self.target else 0.0
            ok = self.value >= self.target
        elif not self.value:
            return "ok"  # nothing against a ceiling: no ratio to print
        else:
            ratio = self.target / self.value
            ok = self.value <= self.target
        return f"{ratio:.2f}x {'ok' if ok else 'MISS'}"


def render(rows: list[Row]) -> str:
    headers = ("#", "figure", "measured", "target", "vs target", "conditions")
    table = [headers] + [
        (r.section, r.figure, r.value_text(), r.target_text(), r.ratio_text(), r.conditions) for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(headers))]
    out = []
    for n, line in enumerate(table):
        out.append("| " + " | ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)

import Foundation
import SeedLicensing

/// The admin dashboard: one self-contained HTML page (inline CSS, no scripts, fonts or external
/// resources) with charts drawn as SVG on the server. Pure: records and the time come in, text goes out.
public enum Dashboard {
    /// Renders the page for the `days` UTC days ending with `now`'s day.
    public static func render(
        records: [AuditRecord], now: AuditTime, days: Int = 30, recent: Int = 25, title: String = "SeedMirror"
    ) -> String {
        let firstDay = now.dayNumber - Int64(days - 1)
        let window = UsageQuery(since: AuditTime.startOfDay(firstDay), until: nil, groupBy: .day, now: now)
        let report = UsageReport.compute(records: records, query: window)
        let recentRecords = records.filter { $0.time <= now }.suffix(recent).reversed()

        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(esc(title)) dashboard</title>
            <style>
            body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
            header{background:#1d2733;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}
            header p{margin:4px 0 0;font-size:13px;color:#c5ced8}
            main{max-width:1240px;margin:0 auto;padding:16px 24px;box-sizing:border-box}
            .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin-bottom:16px}
            .tile{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
            .tile b{display:block;font-size:24px}.tile span{font-size:12px;color:#5b6877}
            .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
            section{background:#fff;border-radius:6px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:0}
            section h2{font-size:15px;margin:0 0 8px}
            svg{width:100%;height:auto;display:block}
            svg text{font-size:11px;fill:#3b4754}
            table{width:100%;border-collapse:collapse;font-size:12px;table-layout:fixed}
            th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e3e7eb;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
            th{background:#eef1f4}
            .k-issued,.k-renewed{color:#1f6feb}.k-reused{color:#1a7f37}.k-refused,.k-quota-exhausted{color:#cf222e}
            .k-rate-limited{color:#9a6700}.empty{color:#5b6877;font-size:13px}
            </style></head><body>
            <header><h1>\(esc(title)): license usage and audit</h1>
            <p>\(days) days to \(now.dateString) &middot; generated \(now.rfc3339)</p></header>
            <main>

            """
        let t = report.totals
        html += "<div class=\"tiles\">"
        for (label, value) in [
            ("requests", t.requests), ("new licenses", t.newLicenses), ("reused (licenses saved)", t.reused),
            ("refused by rule", t.refusedByRule), ("rate-limited", t.rateLimited), ("quota exhausted", t.quotaExhausted),
        ] {
            html += "<div class=\"tile\"><b>\(value)</b><span>\(esc(label))</span></div>"
        }
        html += "</div>\n<div class=\"grid\">\n"
        html += section("Licenses per day: issued vs reused", dailyChart(report: report, firstDay: firstDay, days: days))
        html += section("Quota", quotaGauge(report: report))
        html += section("Refusals by rule", barList(id: "chart-refusals", items: report.refusalsByRule.map { ($0.rule, $0.count) },
            color: "#cf222e", empty: "No refusals in this period."))
        html += section("Top requesting networks", barList(id: "chart-networks", items: topNetworks(records, since: window.since!, now: now),
            color: "#1f6feb", empty: "No requests in this period."))
        html += "</div>\n"
        html += "<section style=\"margin-top:16px\"><h2>Recent decisions</h2>\n"
        html += "<table id=\"recent\"><colgroup><col style=\"width:17%\"><col style=\"width:11%\"><col style=\"width:16%\">"
            + "<col style=\"width:9%\"><col style=\"width:13%\"><col style=\"width:10%\"><col style=\"width:24%\"></colgroup>\n"
        html += "<thead><tr><th>time (UTC)</th><th>decision</th><th>host</th><th>type</th><th>client</th><th>token</th><th>rule / reason</th></tr></thead><tbody>\n"
        for r in recentRecords {
            let why = [r.rule, r.reason].compactMap { $0 }.joined(separator: ": ")
            html += "<tr><td>\(esc(r.time.rfc3339))</td><td class=\"k-\(esc(r.event))\">\(esc(r.event))"
                + (r.reportOnly ? " (report-only)" : "") + "</td>"
                + "<td title=\"\(esc(r.hostAsked ?? ""))\">\(esc(r.host ?? r.hostAsked ?? ""))</td><td>\(esc(r.type ?? ""))</td>"
                + "<td>\(esc(r.clientAddress ?? ""))</td><td>\(esc(r.clientToken ?? ""))</td><td title=\"\(esc(why))\">\(esc(why))</td></tr>\n"
        }
        if recentRecords.isEmpty { html += "<tr><td colspan=\"7\" class=\"empty\">No decisions yet.</td></tr>\n" }
        html += "</tbody></table></section>\n</main></body></html>\n"
        return html
    }

    private static func section(_ title: String, _ body: String) -> String {
        "<section><h2>\(esc(title))</h2>\n\(body)\n</section>\n"
    }

    static func dailyChart(report: UsageReport, firstDay: Int64, days: Int) -> String {
        var byDay: [String: UsageCounts] = [:]
        for g in report.groups { byDay[g.key] = g.counts }
        let w = 560.0, h = 240.0, left = 36.0, bottom = 28.0, top = 24.0
        let plotW = w - left - 8, plotH = h - bottom - top
        let values = (0..<days).map { i -> (String, Int, Int) in
            let d = AuditTime.dateString(day: firstDay + Int64(i))
            let c = byDay[d] ?? UsageCounts()
            return (d, c.newLicenses, c.reused)
        }
        let maxV = max(1, values.map { max($0.1, $0.2) }.max() ?? 1)
        let step = niceStep(maxV)
        let top4 = ((maxV + step - 1) / step) * step
        var s = "<svg id=\"chart-daily\" viewBox=\"0 0 \(n(w)) \(n(h))\" role=\"img\" aria-label=\"licenses issued and reused per day\">"
        s += "<rect x=\"\(n(left))\" y=\"4\" width=\"10\" height=\"10\" fill=\"#1f6feb\"/><text x=\"\(n(left + 14))\" y=\"13\">issued</text>"
        s += "<rect x=\"\(n(left + 70))\" y=\"4\" width=\"10\" height=\"10\" fill=\"#1a7f37\"/><text x=\"\(n(left + 84))\" y=\"13\">reused</text>"
        var v = 0
        while v <= top4 {
            let y = top + plotH - plotH * Double(v) / Double(top4)
            s += "<line x1=\"\(n(left))\" x2=\"\(n(w - 8))\" y1=\"\(n(y))\" y2=\"\(n(y))\" stroke=\"#e3e7eb\"/>"
            s += "<text x=\"\(n(left - 4))\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(v)</text>"
            v += step
        }
        let slot = plotW / Double(days)
        let barW = max(1, slot * 0.38)
        for (i, (day, issued, reused)) in values.enumerated() {
            let x = left + slot * Double(i) + slot * 0.1
            for (j, (val, color, label)) in [(issued, "#1f6feb", "issued"), (reused, "#1a7f37", "reused")].enumerated() {
                let bh = plotH * Double(val) / Double(top4)
                s += "<rect class=\"bar-\(label)\" x=\"\(n(x + Double(j) * barW))\" y=\"\(n(top + plotH - bh))\" width=\"\(n(barW))\" "
                    + "height=\"\(n(bh))\" fill=\"\(color)\"><title>\(day): \(val) \(label)</title></rect>"
            }
            if i % max(1, days / 6) == 0 || i == days - 1 {
                s += "<text x=\"\(n(left + slot * (Double(i) + 0.5)))\" y=\"\(n(h - 8))\" text-anchor=\"middle\">\(day.dropFirst(5))</text>"
            }
        }
        s += "<line x1=\"\(n(left))\" x2=\"\(n(w - 8))\" y1=\"\(n(top + plotH))\" y2=\"\(n(top + plotH))\" stroke=\"#8c959f\"/>"
        return s + "</svg>"
    }

    static func quotaGauge(report: UsageReport) -> String {
        let w = 560.0, h = 240.0, cx = 280.0, cy = 170.0, r = 120.0
        var s = "<svg id=\"chart-quota\" viewBox=\"0 0 \(n(w)) \(n(h))\" role=\"img\" aria-label=\"quota gauge\">"
        func point(_ f: Double) -> (Double, Double) {
            let a = Double.pi * (1 - f)
            return (cx + r * cos(a), cy - r * sin(a))
        }
        let (x0, y0) = point(0), (x1, y1) = point(1)
        s += "<path d=\"M \(n(x0)) \(n(y0)) A \(n(r)) \(n(r)) 0 0 1 \(n(x1)) \(n(y1))\" fill=\"none\" stroke=\"#e3e7eb\" stroke-width=\"26\"/>"
        let used = report.accounts.reduce(Int64(0)) { $0 + $1.used }
        let total = report.accounts.reduce(Int64(0)) { $0 + $1.total }
        if total > 0 {
            let f = min(1, max(0, Double(used) / Double(total)))
            let (xf, yf) = point(f)
            let color = f >= 0.9 ? "#cf222e" : f >= 0.7 ? "#9a6700" : "#1a7f37"
            if f > 0 {
                s += "<path class=\"gauge-used\" d=\"M \(n(x0)) \(n(y0)) A \(n(r)) \(n(r)) 0 0 1 \(n(xf)) \(n(yf))\" fill=\"none\" "
                    + "stroke=\"\(color)\" stroke-width=\"26\"><title>\(used) of \(total) used</title></path>"
            }
            s += "<text x=\"\(n(cx))\" y=\"\(n(cy - 30))\" text-anchor=\"middle\" style=\"font-size:28px;font-weight:600\">\(total - used)</text>"
            s += "<text x=\"\(n(cx))\" y=\"\(n(cy - 8))\" text-anchor=\"middle\">licenses remaining of \(total) (\(used) used)</text>"
        } else {
            s += "<text x=\"\(n(cx))\" y=\"\(n(cy - 20))\" text-anchor=\"middle\">no quota figures reported yet</text>"
        }
        let proj = report.projectedExhaustion.map { "runs out around \($0)" }
            ?? (report.remaining == nil ? "exhaustion date unknown" : "no exhaustion at the current rate")
        s += "<text id=\"quota-exhaustion\" x=\"\(n(cx))\" y=\"\(n(cy + 30))\" text-anchor=\"middle\" style=\"font-size:14px\">\(esc(proj))</text>"
        s += "<text x=\"\(n(cx))\" y=\"\(n(cy + 50))\" text-anchor=\"middle\">burn \(fmt2(report.burn7.perDay))/day (7 d), "
            + "\(fmt2(report.burn30.perDay))/day (30 d)</text>"
        let perAccount = report.accounts.prefix(4).map { "\($0.key): \($0.remaining) of \($0.total) left" + ($0.remaining == 0 ? " (exhausted)" : "") }
        if report.accounts.count > 1 || report.accounts.first?.remaining == 0 {
            s += "<text class=\"accounts\" x=\"\(n(cx))\" y=\"\(n(cy + 68))\" text-anchor=\"middle\">\(esc(perAccount.joined(separator: " · ")))</text>"
        }
        return s + "</svg>"
    }

    static func barList(id: String, items: [(String, Int)], color: String, empty: String) -> String {
        let shown = Array(items.prefix(10))
        let rowH = 22.0, w = 560.0, labelW = 190.0
        let h = max(40, rowH * Double(shown.count) + 10)
        var s = "<svg id=\"\(id)\" viewBox=\"0 0 \(n(w)) \(n(h))\" role=\"img\" aria-label=\"\(esc(id))\">"
        if shown.isEmpty {
            s += "<text x=\"8\" y=\"24\">\(esc(empty))</text>"
        }
        let maxV = max(1, shown.map(\.1).max() ?? 1)
        for (i, (label, count)) in shown.enumerated() {
            let y = 5 + rowH * Double(i)
            let bw = (w - labelW - 50) * Double(count) / Double(maxV)
            let shortLabel = label.count > 28 ? String(label.prefix(27)) + "…" : label
            s += "<text x=\"\(n(labelW - 6))\" y=\"\(n(y + 14))\" text-anchor=\"end\">\(esc(shortLabel))</text>"
            s += "<rect class=\"bar\" x=\"\(n(labelW))\" y=\"\(n(y + 2))\" width=\"\(n(max(1, bw)))\" height=\"\(n(rowH - 6))\" fill=\"\(color)\">"
                + "<title>\(esc(label)): \(count)</title></rect>"
            s += "<text x=\"\(n(labelW + max(1, bw) + 4))\" y=\"\(n(y + 14))\">\(count)</text>"
        }
        return s + "</svg>"
    }

    /// Requests by client network (IPv4 /24, IPv6 /64) in the window, most first.
    static func topNetworks(_ records: [AuditRecord], since: AuditTime, now: AuditTime) -> [(String, Int)] {
        var counts: [String: Int] = [:]
        for r in records where r.time >= since && r.time <= now {
            var c = UsageCounts()
            c.add(r)
            guard c.requests > 0, let a = r.clientAddress else { continue }
            counts[networkOf(a), default: 0] += 1
        }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static func networkOf(_ address: String) -> String {
        // SeedLicensing's IPAddress keeps IPv4 as `::ffff:a.b.c.d`, so a mapped address is the same IPv4.
        guard let ip = IPAddress(address) else { return address }
        let b = ip.bytes
        if ip.isV4 { return "\(b[12]).\(b[13]).\(b[14]).0/24" }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(b[$0]) << 8 | UInt16(b[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }

    private static func niceStep(_ maxV: Int) -> Int {
        let raw = max(1, maxV / 4)
        var mag = 1
        while mag * 10 <= raw { mag *= 10 }
        for m in [1, 2, 5, 10] where m * mag >= raw { return m * mag }
        return raw
    }
}

private func n(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}

/// HTML text and attribute escaping.
func esc(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

import Foundation

/// Colours that stay apart under the common colour-vision deficiencies (Okabe & Ito); series are also
/// told apart by dash pattern and marker, never by a red/green contrast alone.
let palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]

/// One line of a chart: points with gaps where the value is missing (NaN losses).
struct Series {
    var label: String
    var color: String
    /// SVG stroke-dasharray ("" for solid).
    var dash: String = ""
    var points: [(x: Double, y: Double?)]
}

/// Text safe inside XML (the page is well-formed XHTML).
func escaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

/// "0.25", "1.2e-05", "12,000": short tick and cell labels.
func shortNumber(_ value: Double) -> String {
    if value == 0 { return "0" }
    if value == value.rounded() && abs(value) < 1e7 { return String(format: "%.0f", value) }
    let magnitude = abs(value)
    if magnitude >= 1e7 || magnitude < 1e-3 { return String(format: "%.1e", value) }
    if magnitude >= 100 { return String(format: "%.0f", value) }
    if magnitude >= 10 { return String(format: "%.1f", value) }
    return String(format: "%.3g", value)
}

/// 1-2-5 ticks covering [low, high].
func niceTicks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
    guard high > low else { return [low] }
    let raw = (high - low) / Double(count)
    let power = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw } ?? raw
    var ticks: [Double] = []
    var tick = ceil(low / step) * step
    while tick <= high + step * 1e-9 { ticks.append(tick); tick += step }
    return ticks
}

/// A line chart as inline SVG: labelled axes with units, a legend, a log y axis when the values span
/// more than two decades (losses, learning rates), gaps for missing values.
func lineChart(title: String, xLabel: String, yLabel: String, series: [Series], forceLog: Bool? = nil, logX: Bool = false) -> String {
    let legendRows = Double((series.count + 1) / 2)
    let width = 640.0, height = 320.0 + 18 * legendRows, left = 70.0, right = 20.0, top = 30.0, bottom = 45.0 + 18 * legendRows
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let series = logX ? series.map { line in
        Series(label: line.label, color: line.color, dash: line.dash, points: line.points.map { (log10($0.x), $0.y) })
    } : series
    let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.compactMap(\.y) }.filter(\.isFinite)
    guard let xMin = xs.min(), let xMax = xs.max(), let yMinRaw = ys.min(), let yMaxRaw = ys.max() else {
        return "<p class=\"empty\">\(escaped(title)): no values to plot.</p>"
    }
    let positive = yMinRaw > 0
    let log = forceLog ?? (positive && yMaxRaw / yMinRaw > 100)
    func transform(_ y: Double) -> Double { log ? log10(y) : y }
    var yLow = transform(yMinRaw), yHigh = transform(yMaxRaw)
    if yHigh - yLow < 1e-12 {  // a constant: centre it
        let span = log ? 0.5 : max(abs(yHigh) * 0.2, 1e-9)
        yLow -= span; yHigh += span
    }
    let padding = (yHigh - yLow) * 0.05
    yLow -= padding; yHigh += padding
    let xHigh = xMax > xMin ? xMax : xMin + 1
    func px(_ x: Double) -> Double { left + (x - xMin) / (xHigh - xMin) * plotWidth }
    func py(_ y: Double) -> Double { top + (1 - (transform(y) - yLow) / (yHigh - yLow)) * plotHeight }
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
        + "aria-label=\"\(escaped(title))\">"
    svg += "<title>\(escaped(title))</title>"
    svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotWidth)\" height=\"\(plotHeight)\" fill=\"#fff\" stroke=\"#888\"/>"
    // y ticks: decades on a log axis, 1-2-5 steps otherwise.
    let yTicks = log ? Array(Int(floor(yLow))...Int(ceil(yHigh))).map { pow(10, Double($0)) }
        .filter { transform($0) >= yLow && transform($0) <= yHigh }
                     : niceTicks(yLow, yHigh)
    for tick in yTicks {
        let y = py(tick)
        svg += "<line x1=\"\(left)\" x2=\"\(left + plotWidth)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
        svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"11\">\(shortNumber(tick))</text>"
    }
    // Epochs: whole numbers. A log axis: decades, or finer steps when the values span less than two.
    var xTicks = logX ? Array(Int(floor(xMin))...Int(ceil(xHigh))).map(Double.init).filter { $0 >= xMin && $0 <= xHigh }
                      : niceTicks(xMin, xHigh, count: min(8, max(2, Int(xHigh - xMin))))
    if !logX && xHigh - xMin >= 2 { xTicks = xTicks.filter { $0 == $0.rounded() } }
    if logX && xTicks.count < 2 { xTicks = niceTicks(xMin, xHigh, count: 4) }
    for tick in xTicks {
        let x = px(tick)
        svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(top + plotHeight)\" y2=\"\(top + plotHeight + 4)\" stroke=\"#888\"/>"
        svg += "<text x=\"\(x)\" y=\"\(top + plotHeight + 17)\" text-anchor=\"middle\" "
            + "font-size=\"11\">\(shortNumber(logX ? pow(10, tick) : tick))</text>"
    }
    svg += "<text x=\"\(left + plotWidth / 2)\" y=\"\(top + plotHeight + 34)\" text-anchor=\"middle\" "
        + "font-size=\"12\">\(escaped(xLabel))</text>"
    svg += "<text transform=\"translate(14 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\" "
        + "font-size=\"12\">\(escaped(yLabel + (log ? " (log scale)" : "")))</text>"
    svg += "<text x=\"\(left)\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(escaped(title))</text>"
    svg += seriesSVG(series, log: log, px: px, py: py, legendLeft: left, legendTop: top + plotHeight + 52,
                     legendWidth: plotWidth)
    return svg + "</svg>"
}

/// Each series' line (broken at missing values), its points, and its legend entry (two per row).
private func seriesSVG(_ series: [Series], log: Bool, px: (Double) -> Double, py: (Double) -> Double,
                       legendLeft: Double, legendTop: Double, legendWidth: Double) -> String {
    var svg = ""
    for (index, line) in series.enumerated() {
        var path = "", drawing = false
        for point in line.points {
            guard let y = point.y, y.isFinite, !log || y > 0 else { drawing = false; continue }
            path += (drawing ? " L" : " M") + "\(px(point.x)) \(py(y))"
            drawing = true
        }
        let dash = line.dash.isEmpty ? "" : " stroke-dasharray=\"\(line.dash)\""
        svg += "<path d=\"\(path)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash)/>"
        for point in line.points {
            guard let y = point.y, y.isFinite, !log || y > 0 else { continue }
            svg += "<circle cx=\"\(px(point.x))\" cy=\"\(py(y))\" r=\"2.5\" fill=\"\(line.color)\"/>"
        }
        let legendX = legendLeft + Double(index % 2) * legendWidth / 2, legendY = legendTop + Double(index / 2) * 18
        svg += "<line x1=\"\(legendX)\" x2=\"\(legendX + 24)\" y1=\"\(legendY)\" y2=\"\(legendY)\" stroke=\"\(line.color)\" "
            + "stroke-width=\"2\"\(dash)/>"
        svg += "<text x=\"\(legendX + 30)\" y=\"\(legendY + 4)\" font-size=\"11\">\(escaped(String(line.label.prefix(48))))</text>"
    }
    return svg
}

/// Grouped bars (e.g. precision, recall and F1 per class), values in [0, max].
func barChart(title: String, yLabel: String, categories: [String], groups: [(label: String, values: [Double])],
              whisker: (category: Int, value: Double, spread: Double)? = nil) -> String {
    let width = 660.0, height = 300.0, left = 60.0, right = 160.0, top = 30.0, bottom = 80.0
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let maximum = max(groups.flatMap(\.values).filter(\.isFinite).max() ?? 1, 1e-12)
    let yHigh = maximum <= 1 ? 1 : (niceTicks(0, maximum).last ?? maximum)
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
        + "aria-label=\"\(escaped(title))\">"
    svg += "<title>\(escaped(title))</title><text x=\"\(left)\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(escaped(title))</text>"
    for tick in niceTicks(0, yHigh) {
        let y = top + (1 - tick / yHigh) * plotHeight
        svg += "<line x1=\"\(left)\" x2=\"\(left + plotWidth)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#ddd\"/>"
        svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"11\">\(shortNumber(tick))</text>"
    }
    let slot = plotWidth / Double(max(categories.count, 1)), barWidth = slot * 0.8 / Double(max(groups.count, 1))
    for (c, category) in categories.enumerated() {
        for (g, group) in groups.enumerated() where c < group.values.count && group.values[c].isFinite {
            let value = group.values[c], barHeight = value / yHigh * plotHeight
            let x = left + Double(c) * slot + slot * 0.1 + Double(g) * barWidth
            svg += "<rect x=\"\(x)\" y=\"\(top + plotHeight - barHeight)\" width=\"\(barWidth)\" "
                + "height=\"\(barHeight)\" fill=\"\(palette[g % palette.count])\">"
                + "<title>\(escaped("\(category) \(group.label): \(shortNumber(value))"))</title></rect>"
        }
        let x = left + (Double(c) + 0.5) * slot
        svg += "<text transform=\"translate(\(x) \(top + plotHeight + 10)) rotate(40)\" "
            + "font-size=\"10\">\(escaped(String(category.prefix(16))))</text>"
    }
    if let whisker, whisker.value.isFinite, whisker.spread.isFinite {
        let x = left + (Double(whisker.category) + 0.5) * slot
        let low = top + (1 - max(0, whisker.value - whisker.spread) / yHigh) * plotHeight
        let high = top + (1 - min(yHigh, whisker.value + whisker.spread) / yHigh) * plotHeight
        svg += "<path d=\"M\(x) \(low) L\(x) \(high) M\(x - 6) \(low) L\(x + 6) \(low) M\(x - 6) \(high) L\(x + 6) "
            + "\(high)\" stroke=\"#000\" stroke-width=\"1.5\"/>"
    }
    svg += "<line x1=\"\(left)\" x2=\"\(left + plotWidth)\" y1=\"\(top + plotHeight)\" y2=\"\(top + plotHeight)\" stroke=\"#888\"/>"
    svg += "<text transform=\"translate(14 \(top + plotHeight / 2)) rotate(-90)\" text-anchor=\"middle\" "
        + "font-size=\"12\">\(escaped(yLabel))</text>"
    for (g, group) in groups.enumerated() {
        let y = top + 10 + Double(g) * 18
        svg += "<rect x=\"\(left + plotWidth + 10)\" y=\"\(y - 8)\" width=\"12\" height=\"12\" fill=\"\(palette[g % palette.count])\"/>"
        svg += "<text x=\"\(left + plotWidth + 28)\" y=\"\(y + 2)\" font-size=\"11\">\(escaped(group.label))</text>"
    }
    return svg + "</svg>"
}

/// A confusion matrix as a heat map on a light-to-dark blue scale (readable in grey and by colour-blind
/// readers), counts in the cells, class names on both axes.
func heatMap(title: String, matrix: [[Int]], classNames: [String]) -> String {
    let n = matrix.count, cell = min(44.0, 440.0 / Double(max(n, 1))), left = 120.0, top = 40.0
    let width = left + cell * Double(n) + 20, height = top + cell * Double(n) + 110
    let maximum = Double(max(matrix.flatMap { $0 }.max() ?? 1, 1))
    var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" "
        + "aria-label=\"\(escaped(title))\">"
    svg += "<title>\(escaped(title))</title><text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">\(escaped(title))</text>"
    for (r, row) in matrix.enumerated() {
        for (c, count) in row.enumerated() {
            // Lightness falls with the count: white (0) to dark blue (max); sqrt shows small confusions too.
            let t = (Double(count) / maximum).squareRoot()
            let red = Int(247 - t * (247 - 8)), green = Int(251 - t * (251 - 48)), blue = Int(255 - t * (255 - 107))
            let x = left + Double(c) * cell, y = top + Double(r) * cell
            svg += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell)\" height=\"\(cell)\" "
                + "fill=\"rgb(\(red),\(green),\(blue))\" "
                    + "stroke=\"#fff\"><title>"
                    + "\(escaped("true \(name(classNames, r)), predicted \(name(classNames, c)): \(count)"))</title></rect>"
            svg += "<text x=\"\(x + cell / 2)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\" "
                + "font-size=\"\(cell >= 36 ? 10 : 8)\" fill=\"\(t > 0.55 ? "#fff" : "#000")\">\(count)</text>"
        }
        svg += "<text x=\"\(left - 6)\" y=\"\(top + (Double(r) + 0.5) * cell + 4)\" text-anchor=\"end\" "
            + "font-size=\"10\">\(escaped(String(name(classNames, r).prefix(18))))</text>"
    }
    for c in 0..<n {
        svg += "<text transform=\"translate(\(left + (Double(c) + 0.5) * cell) \(top + Double(n) * cell + 8)) "
            + "rotate(50)\" font-size=\"10\">\(escaped(String(name(classNames, c).prefix(18))))</text>"
    }
    svg += "<text x=\"\(left + Double(n) * cell / 2)\" y=\"\(height - 4)\" text-anchor=\"middle\" font-size=\"12\">predicted class</text>"
    svg += "<text transform=\"translate(12 \(top + Double(n) * cell / 2)) rotate(-90)\" text-anchor=\"middle\" "
        + "font-size=\"12\">true class</text>"
    return svg + "</svg>"
}

private func name(_ names: [String], _ index: Int) -> String { names.indices.contains(index) ? names[index] : "class \(index)" }

import Foundation

/// Line-buffered output (stdout unless told otherwise) that writes in large chunks: printing a
/// million lines one `print` at a time costs more than querying them.
public struct BufferedOutput {
    public let fileDescriptor: Int32
    private var buffer: [UInt8] = []

    public init(fileDescriptor: Int32 = STDOUT_FILENO) {
        self.fileDescriptor = fileDescriptor
    }

    public mutating func write(_ line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    /// Writes what is buffered. A reader that went away (`| head`) ends the process: 0 when the
    /// pipe was closed, 141 (SIGPIPE's code) on an error, as a shell pipeline expects.
    public mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { Foundation.exit(written == 0 ? 0 : 141) }  // reader went away (e.g. `| head`)
                offset += written
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Prints lines to stdout in one go.
public func printLines(_ lines: [String]) {
    var output = BufferedOutput()
    for line in lines { output.write(line) }
    output.flush()
}

/// Prints a table that arrives in chunks: JSON and CSV as they come, text once all rows are
/// there (its columns are as wide as their widest cell).
public struct ChunkedTablePrinter {
    public let format: OutputFormat
    public let colors: NodeColors?
    private var output = BufferedOutput()
    private var collected: Table?
    private var started = false

    public init(format: OutputFormat, colors: NodeColors?) {
        self.format = format
        self.colors = colors
    }

    public mutating func add(_ chunk: Table) {
        switch format {
        case .text:
            if collected == nil { collected = Table(columns: chunk.columns) }
            collected!.rows += chunk.rows
        case .json, .csv:
            // CSV's header comes with the first chunk only.
            for line in chunk.render(format).dropFirst(format == .csv && started ? 1 : 0) { output.write(line) }
            started = true
        }
    }

    public mutating func finish() {
        if let collected { for line in collected.render(.text, colors: colors) { output.write(line) } }
        output.flush()
    }
}

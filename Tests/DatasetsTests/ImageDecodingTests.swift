import XCTest
@testable import Datasets
import _TestSupport

/// Decoding through libpng and libjpeg-turbo: sizes, channel conversion, resizing, and refusals by name.
/// The JPEGs are 8x4 images written by libjpeg at quality 100 (grey, RGB, CMYK), pixel (x, y) = 60y + 20x.
final class ImageDecodingTests: XCTestCase {
    private static let greyJPEG = Data(base64Encoded: "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAALCAAEAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/AOH/AOCgnh34Wf8ABJ3wr+xn4e/ZP+B3wfi1f9qbw/8AtLaN4h8dfEjwrc+MvFXw31H4b6d8ErHwd4s+GNnFq2jeCE8QaTc/FTWdYa2+I/g74j+FdQ1HR/D8WpeGbvSItY0vWv/Z")!
    private static let rgbJPEG = Data(base64Encoded: "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/2wBDAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQH/wAARCAAEAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+nfBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1ooooA//9k=")!
    private static let cmykJPEG = Data(base64Encoded: "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB/8AAFAgABAAIBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwDh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+nfBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1rh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+nfBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1rh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+nfBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1rh/wDgoJ4d+Fn/AASd8K/sZ+Hv2T/gd8H4tX/am8P/ALS2jeIfHXxI8K3PjLxV8N9R+G+nfBKx8HeLPhjZxato3ghPEGk3PxU1nWGtviP4O+I/hXUNR0fw/FqXhm70iLWNL1r/2Q==")!
    private var directory = ""
    override func setUp() { directory = makeTemporaryDirectory("decode") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func file(_ name: String, _ bytes: [UInt8]) -> String {
        writeBytes(bytes, to: "\(directory)/\(name)")
        return "\(directory)/\(name)"
    }

    func testJPEGsDecodeGreyAndRGBAndRefuseCMYK() throws {
        let grey = file("g.jpg", [UInt8](Self.greyJPEG)), rgb = file("rgb.jpg", [UInt8](Self.rgbJPEG)), cmyk = file("c.jpg", [UInt8](Self.cmykJPEG))
        XCTAssertEqual(try imageInfo(grey).channels, 1)
        XCTAssertEqual(try imageInfo(rgb).channels, 3)
        let pixels = try decodeImage(grey, preprocessing: ImagePreprocessing(channels: 1, height: 4, width: 8))
        for y in 0..<3 { for x in 0..<4 { XCTAssertEqual(Int(pixels[y * 8 + x]), 60 * y + 20 * x, accuracy: 3, "(\(x), \(y))") } }
        let planes = try decodeImage(rgb, preprocessing: ImagePreprocessing(channels: 3, height: 4, width: 8))
        XCTAssertEqual(planes.count, 96)
        XCTAssertEqual(Int(planes[32 + 9]), 60 + 20, accuracy: 3, "green plane, pixel (1, 1)")
        XCTAssertThrowsError(try imageInfo(cmyk)) { XCTAssertTrue("\($0)".contains("CMYK JPEGs are not supported"), "\($0)") }
        XCTAssertThrowsError(try decodeImage(file("t.jpg", Array([UInt8](Self.rgbJPEG).prefix(200))), preprocessing: ImagePreprocessing(channels: 3, height: 4, width: 8))) {
            XCTAssertTrue("\($0)".contains("t.jpg"), "\($0)")
        }
        // Cut inside the scan data: libjpeg only warns ("premature end of data") and invents the rest; refused.
        let cut = file("cut.jpg", Array([UInt8](Self.rgbJPEG).dropLast(12)))
        XCTAssertThrowsError(try decodeImage(cut, preprocessing: ImagePreprocessing(channels: 3, height: 4, width: 8))) {
            XCTAssertTrue("\($0)".contains("cut.jpg") && "\($0)".contains("damaged JPEG data"), "\($0)")
        }
    }

    func testPNGsConvertChannelsAndResizeBilinearly() throws {
        // 2x2 RGB: red, green / blue, white.
        let png = file("a.png", pngFile(width: 2, height: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]))
        XCTAssertEqual(try decodeImage(png, preprocessing: ImagePreprocessing(channels: 3, height: 2, width: 2)),
                       [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255], "planar R, G, B")
        let grey = try decodeImage(png, preprocessing: ImagePreprocessing(channels: 1, height: 2, width: 2))
        XCTAssertEqual(grey[3], 255)
        XCTAssertEqual(grey, [76, 150, 29, 255], "Rec. 601: 0.299·255, 0.587·255, 0.114·255, white")
        // Bilinear at pixel centres: a 1x2 ramp 0, 100 to 1x4 gives 0, 25, 75, 100.
        let ramp = file("r.png", pngFile(width: 2, height: 1, channels: 1, pixels: [0, 100]))
        XCTAssertEqual(try decodeImage(ramp, preprocessing: ImagePreprocessing(channels: 1, height: 1, width: 4)), [0, 25, 75, 100])
        XCTAssertThrowsError(try imageInfo(file("x.png", Array("not an image".utf8)))) {
            XCTAssertTrue("\($0)".contains("not a PNG or JPEG image"), "\($0)")
        }
    }
}

import Foundation
import TestSupport
import XCTest
@testable import Tensors

final class LossTests: XCTestCase {
    func testCrossEntropyValueAndGradient() {
        let logits = Tensor(shape: [2, 3], values: [1, 2, 3, 0, 0, 5])
        // -log softmax: row 0 label 2, row 1 label 0.
        let l0 = -Foundation.log(Foundation.exp(3.0) / (Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0)))
        let l1 = -Foundation.log(1 / (2 + Foundation.exp(5.0)))
        XCTAssertEqual(Double(crossEntropy(logits, labels: [2, 0]).item), (l0 + l1) / 2, accuracy: 1e-5)
        gradCheck("cross entropy", [sample([4, 5])]) { crossEntropy($0[0], labels: [0, 4, 2, 2]) }
    }

    func testSoftmaxRowsSumToOne() {
        let p = softmax(Tensor(shape: [2, 3], values: [1, 2, 3, 1000, 0, -1000]))
        for i in 0..<2 { XCTAssertEqual(p.data[i * 3] + p.data[i * 3 + 1] + p.data[i * 3 + 2], 1, accuracy: 1e-6) }
        XCTAssertEqual(Double(p.data[2]), Foundation.exp(3.0) / (Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0)), accuracy: 1e-6)
        XCTAssertEqual(p.data[3], 1)   // stable for large logits
    }
}

import GAN
import NN
import TestSupport
import XCTest
@testable import Tensors

/// The tutorial's GAN models against PyTorch 2.13 (`ModuleParity`; the fixtures are NNTests',
/// written with the layers' by tools/fixtures/make_nn_fixtures.py).
final class ModelParityTests: XCTestCase {
    lazy var parity = ModuleParity(Fixtures.load("nn.safetensors", target: "NNTests"))

    func check(_ p: String, _ m: Module, forward: (Module, Tensor) -> Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        try parity.check(p, m, forward: forward, file: file, line: line)
    }

    func testMLPGenerator() throws {
        var r = RandomGenerator(seed: 1)
        try check("mlp_g", MLPGenerator(rng: &r)) { ($0 as! MLPGenerator).generate($1) }
    }

    func testMLPDiscriminator() throws {
        var r = RandomGenerator(seed: 1)
        try check("mlp_d", MLPDiscriminator(rng: &r)) { $0($1) }
    }

    func testDCGAN64() throws {
        var r = RandomGenerator(seed: 1)
        try check("dcgan_g", DCGANGenerator(latentDim: 16, ngf: 4, nc: 1, imageSize: 64, rng: &r)) { $0($1) }
        try check("dcgan_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 64, rng: &r)) { $0($1) }
    }

    func testDCGAN32() throws {
        var r = RandomGenerator(seed: 1)
        try check("dcgan32_g", DCGANGenerator(latentDim: 16, ngf: 4, nc: 1, imageSize: 32, rng: &r)) { $0($1) }
        try check("dcgan32_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 32, rng: &r)) { $0($1) }
    }

    func testSpectralNormDiscriminator() throws {
        var r = RandomGenerator(seed: 1)
        try check("sn_d", DCGANDiscriminator(nc: 1, ndf: 4, imageSize: 64, spectral: true, rng: &r)) { $0($1) }
    }
}

/// Every differentiable op of the project, by identity (as tinygrad's `Ops`): a graph node
/// records which op made it, and code that treats some ops specially (backward's direct
/// gradient writes, the in-place activations) matches cases, not strings. An op added anywhere
/// (a `record` in Tensors, a `recordCustom` in a module above) gets a case here. The raw value is
/// the op's name as errors and `Tensor.gradFnName` show it (PyTorch's names where it has one);
/// docs/ARCHITECTURE.md indexes where each op's backward rule is (scripts/backward-index.py).
public enum Op: String, Sendable, CaseIterable {
    // Elementwise (Elementwise.swift)
    case add, sub, mul, div, neg, abs, exp, log, sqrt, pow, tanh, sigmoid, softplus, clamp, relu
    case addScalar = "add_scalar", mulScalar = "mul_scalar", rsubScalar = "rsub_scalar", rdivScalar = "rdiv_scalar"
    case leakyRelu = "leaky_relu", reluInPlace = "relu_", leakyReluInPlace = "leaky_relu_", logSigmoid = "log_sigmoid"
    // Products and images (Linalg.swift, Conv.swift, BatchNormOp.swift, Images.swift, Losses.swift)
    case matmul, conv2d, conv2dWeightGrad = "conv2d_weight_grad", convTranspose2d = "conv_transpose2d"
    case batchNorm = "batch_norm", avgPool2d = "avg_pool2d", upsampleNearest2d = "upsample_nearest2d"
    case binaryCrossEntropy = "binary_cross_entropy"
    // Shapes (ShapeOps.swift)
    case concat, embed, expand, narrow, norm, permute, reshape, sumTo = "sum_to"
    // Defined above Tensors (recordCustom): SyncBatchNorm's sum over the ranks (NN/Norm.swift).
    case allReduceSum = "all_reduce_sum"
}

import Tensors
BLASRuntime.selectKernels()
print("gan-worker: not yet")

import Tensors
BLASRuntime.selectKernels()
print("gan-coordinator: not yet")

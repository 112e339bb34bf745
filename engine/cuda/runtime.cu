// Device memory, streams and the bandwidth probe of the CUDA backend (kernels.h).

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <utility>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"

namespace folio::engine::cuda {

DeviceMemory::DeviceMemory(std::size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    if (const cudaError_t status = cudaMalloc(&data_, bytes); status != cudaSuccess) {
        cudaGetLastError();
        data_ = nullptr;
        throw CudaError("cannot allocate " + std::to_string(bytes >> 20) + " MiB on the GPU: " +
                        cudaGetErrorString(status));
    }
}

DeviceMemory::~DeviceMemory() {
    if (data_) cudaFree(data_);
}

DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
    if (this != &other) {
        if (data_) cudaFree(data_);
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
}

void use_gpu(int gpu) {
    check(cudaSetDevice(gpu), "select GPU " + std::to_string(gpu));
}

std::size_t free_gpu_memory() {
    std::size_t free_bytes = 0, total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "read the GPU's free memory");
    return free_bytes;
}

Stream::Stream() {
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "create a CUDA stream");
    stream_ = stream;
    cublasHandle_t handle = nullptr;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(stream);
        throw CudaError("cannot create a cuBLAS handle");
    }
    cublasSetStream(handle, stream);
    cublas_ = handle;
}

Stream::~Stream() {
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
    cublasDestroy(static_cast<cublasHandle_t>(cublas_));
    cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void Stream::copy_to_device(void* device, const void* host, std::size_t bytes) {
    check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, static_cast<cudaStream_t>(stream_)),
          "copy to the GPU");
}

void Stream::copy_to_host(void* host, const void* device, std::size_t bytes) {
    check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, static_cast<cudaStream_t>(stream_)),
          "copy from the GPU");
    synchronize();
}

void Stream::zero(void* device, std::size_t bytes) {
    check(cudaMemsetAsync(device, 0, bytes, static_cast<cudaStream_t>(stream_)), "clear GPU memory");
}

void Stream::synchronize() {
    check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "run on the GPU");
}

void* Stream::workspace(int slot, std::size_t bytes) {
    DeviceMemory& memory = workspaces_[slot];
    if (memory.bytes() < bytes) {
        synchronize();  // kernels queued earlier may still read the old buffer
        memory = DeviceMemory();
        memory = DeviceMemory(bytes);
        ++workspace_generation_;
    }
    return memory.get();
}

Graph::~Graph() {
    release();
}

void Graph::release() {
    if (exec_) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
    if (graph_) cudaGraphDestroy(static_cast<cudaGraph_t>(graph_));
    exec_ = graph_ = nullptr;
}

Graph::Graph(Graph&& other) noexcept
    : graph_(std::exchange(other.graph_, nullptr)), exec_(std::exchange(other.exec_, nullptr)) {}

Graph& Graph::operator=(Graph&& other) noexcept {
    if (this != &other) {
        release();
        graph_ = std::exchange(other.graph_, nullptr);
        exec_ = std::exchange(other.exec_, nullptr);
    }
    return *this;
}

void Graph::begin_capture(Stream& stream) {
    check(cudaStreamBeginCapture(static_cast<cudaStream_t>(stream.handle()), cudaStreamCaptureModeThreadLocal),
          "start recording a CUDA graph");
}

void Graph::end_capture(Stream& stream) {
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(static_cast<cudaStream_t>(stream.handle()), &graph), "record a CUDA graph");
    cudaGraphExec_t exec = nullptr;
    if (const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0); status != cudaSuccess) {
        cudaGraphDestroy(graph);
        check(status, "instantiate a CUDA graph");
    }
    release();
    graph_ = graph;
    exec_ = exec;
}

void Graph::launch(Stream& stream) {
    check(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), static_cast<cudaStream_t>(stream.handle())),
          "launch a CUDA graph");
}

double measure_copy_bandwidth(std::size_t bytes, int repeats) {
    DeviceMemory source(bytes), destination(bytes);
    check(cudaMemset(source.get(), 1, bytes), "fill the GPU copy probe");
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "create a CUDA event");
    check(cudaEventCreate(&stop), "create a CUDA event");
    check(cudaMemcpy(destination.get(), source.get(), bytes, cudaMemcpyDeviceToDevice), "copy within the GPU");
    check(cudaEventRecord(start), "record a CUDA event");
    for (int i = 0; i < repeats; ++i)
        check(cudaMemcpyAsync(destination.get(), source.get(), bytes, cudaMemcpyDeviceToDevice), "copy within the GPU");
    check(cudaEventRecord(stop), "record a CUDA event");
    check(cudaEventSynchronize(stop), "time the GPU copy");
    float milliseconds = 0.f;
    check(cudaEventElapsedTime(&milliseconds, start, stop), "time the GPU copy");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return 2.0 * static_cast<double>(bytes) * repeats / (milliseconds * 1e-3);
}

}  // namespace folio::engine::cuda

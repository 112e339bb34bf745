# The CUDA backend is optional: FOLIO_CUDA=AUTO builds it when nvcc is found,
# ON requires it, OFF never builds it. Without it (or without a GPU at run
# time) the CPU backend runs.
set(FOLIO_HAVE_CUDA OFF)
if(NOT FOLIO_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # GPU architectures compiled into the backend:
    #   80 Ampere data-centre (A100), 86 Ampere consumer (RTX 30xx),
    #   89 Ada (RTX 40xx, L4/L40), 90 Hopper (H100/H200).
    # CI builds only what the tests run on (FOLIO_CUDA_ARCHITECTURES=90) to
    # keep the 2-core build short.
    set(FOLIO_CUDA_ARCHITECTURES "80;86;89;90" CACHE STRING "GPU architectures for the CUDA backend")
    set(CMAKE_CUDA_ARCHITECTURES ${FOLIO_CUDA_ARCHITECTURES})
    # CMake 3.25 does not know nvcc 13 speaks C++20; the kernels need only C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(FOLIO_HAVE_CUDA ON)
  elseif(FOLIO_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FOLIO_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "Folio CUDA backend: ${FOLIO_HAVE_CUDA}")

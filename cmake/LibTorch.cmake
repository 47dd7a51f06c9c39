# Chooses the LibTorch the addon is built against, and makes sure that every LibTorch library it links and loads
# comes from that one installation.
#
# Order: -DTorch_DIR; $LIBTORCH (a prefix: a LibTorch zip's folder or a PyTorch wheel's torch/); the PyTorch of
# `python3` when it carries a LibTorch (pip wheels do, Debian's python3-torch does not); the system's.
#
# TorchConfig looks for libtorch and libc10 with find_library(... PATHS <prefix>/lib), which searches the system's
# folders first: with Debian's libtorch-dev installed, a build against a wheel's 2.x headers took /usr/lib's 1.13
# libraries, and it loads the Caffe2 config (the imported targets torch, torch_cpu and c10) the same way. Both are
# therefore looked for in the chosen prefix only, and the result is checked.
#
# Sets TORCH_LIBRARIES (find_package), LIBTORCH_PREFIX, LIBTORCH_RPATH (empty for a LibTorch on the system's library
# path) and LIBTORCH_CXX_STANDARD (the standard its headers need: 17, or 20 for LibTorch 2.10 and later).

if(NOT Torch_DIR AND DEFINED ENV{LIBTORCH})
  set(Torch_DIR "$ENV{LIBTORCH}/share/cmake/Torch")
  if(NOT EXISTS "${Torch_DIR}/TorchConfig.cmake")
    message(FATAL_ERROR "LIBTORCH=$ENV{LIBTORCH} is not a LibTorch: ${Torch_DIR}/TorchConfig.cmake does not exist")
  endif()
endif()
if(NOT Torch_DIR)
  find_program(LIBTORCH_PYTHON NAMES python3)
  if(LIBTORCH_PYTHON)
    execute_process(COMMAND "${LIBTORCH_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE python_cmake_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE python_status ERROR_QUIET)
    if(python_status EQUAL 0 AND EXISTS "${python_cmake_prefix}/Torch/TorchConfig.cmake")
      set(Torch_DIR "${python_cmake_prefix}/Torch")
      message(STATUS "LibTorch: the PyTorch of ${LIBTORCH_PYTHON}")
    endif()
  endif()
endif()

# A build folder configured for another LibTorch forgets the libraries it found there.
if(DEFINED LIBTORCH_CONFIGURED_FOR AND NOT "${LIBTORCH_CONFIGURED_FOR}" STREQUAL "${Torch_DIR}")
  foreach(variable TORCH_LIBRARY c10_LIBRARY C10_CUDA_LIBRARY kineto_LIBRARY CUDA_nvrtc_LIBRARY CUDA_NVRTC_LIB Caffe2_DIR)
    unset(${variable} CACHE)
  endforeach()
endif()
set(LIBTORCH_CONFIGURED_FOR "${Torch_DIR}" CACHE INTERNAL "The Torch_DIR this build folder was configured with")

if(Torch_DIR)
  get_filename_component(LIBTORCH_PREFIX "${Torch_DIR}/../../.." ABSOLUTE)
  # TorchConfig loads the Caffe2 config (the imported targets torch, torch_cpu, c10) with find_package(... PATHS),
  # which also prefers the system's.
  set(Caffe2_DIR "${Torch_DIR}/../Caffe2")
  foreach(library torch c10 c10_cuda kineto)
    # The cache variables TorchConfig's find_library calls fill; once set, those calls keep them.
    if(library STREQUAL "torch")
      set(variable TORCH_LIBRARY)
    elseif(library STREQUAL "c10_cuda")
      set(variable C10_CUDA_LIBRARY)
    else()
      set(variable ${library}_LIBRARY)
    endif()
    find_library(${variable} ${library} PATHS "${LIBTORCH_PREFIX}/lib" NO_DEFAULT_PATH)
  endforeach()
endif()

# A CUDA LibTorch's config finds the toolkit with FindCUDA, which takes its root from where nvcc is on PATH; that may
# be a wrapper (/usr/local/bin/nvcc here). The root is the first of $CUDA_HOME, the folder above nvcc's real place
# and /usr/local/cuda that holds the toolkit's headers.
if(NOT CUDA_TOOLKIT_ROOT_DIR)
  find_program(LIBTORCH_NVCC nvcc)
  set(candidates "$ENV{CUDA_HOME}")
  if(LIBTORCH_NVCC)
    get_filename_component(nvcc "${LIBTORCH_NVCC}" REALPATH)
    get_filename_component(nvcc_root "${nvcc}/../.." ABSOLUTE)
    list(APPEND candidates "${nvcc_root}")
  endif()
  list(APPEND candidates /usr/local/cuda)
  foreach(candidate ${candidates})
    if(EXISTS "${candidate}/include/cuda_runtime.h")
      set(CUDA_TOOLKIT_ROOT_DIR "${candidate}" CACHE PATH "The CUDA toolkit")
      break()
    endif()
  endforeach()
endif()

# A CUDA PyTorch wheel loads the CUDA libraries of NVIDIA's wheels beside it (site-packages/nvidia/*/lib), which
# carry versioned names only. The config links nvrtc from the toolkit; where the toolkit lacks it, take the wheel's.
if(LIBTORCH_PREFIX AND NOT CUDA_nvrtc_LIBRARY)
  file(GLOB nvrtc "${LIBTORCH_PREFIX}/../nvidia/*/lib/libnvrtc.so.[0-9]*")
  find_library(toolkit_nvrtc nvrtc HINTS "${CUDA_TOOLKIT_ROOT_DIR}" PATH_SUFFIXES lib64 lib NO_CACHE)
  if(nvrtc AND NOT toolkit_nvrtc)
    list(GET nvrtc 0 nvrtc)
    set(CUDA_nvrtc_LIBRARY "${nvrtc}" CACHE FILEPATH "nvrtc, from the NVIDIA wheels beside the LibTorch")
  endif()
endif()

find_package(Torch REQUIRED)

if(NOT LIBTORCH_PREFIX)
  get_filename_component(LIBTORCH_PREFIX "${TORCH_LIBRARY}/../.." ABSOLUTE)
endif()

# Every LibTorch library the addon links must be the chosen installation's.
set(linked "${TORCH_LIBRARY}")
foreach(target torch torch_cpu torch_cuda c10 c10_cuda)
  if(TARGET ${target})
    get_target_property(configurations ${target} IMPORTED_CONFIGURATIONS)
    set(properties IMPORTED_LOCATION)
    foreach(configuration ${configurations})
      list(APPEND properties IMPORTED_LOCATION_${configuration})
    endforeach()
    foreach(property ${properties})
      get_target_property(location ${target} ${property})
      if(location)
        list(APPEND linked "${location}")
      endif()
    endforeach()
  endif()
endforeach()
foreach(variable c10_LIBRARY C10_CUDA_LIBRARY)
  if(${variable})
    list(APPEND linked "${${variable}}")
  endif()
endforeach()
get_filename_component(LIBTORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
get_filename_component(LIBTORCH_LIB_DIR "${LIBTORCH_LIB_DIR}" REALPATH)
foreach(location ${linked})
  get_filename_component(directory "${location}" DIRECTORY)
  get_filename_component(directory "${directory}" REALPATH)
  if(NOT directory STREQUAL LIBTORCH_LIB_DIR)
    message(FATAL_ERROR "LibTorch libraries from two installations: ${location} is not in ${LIBTORCH_LIB_DIR} "
      "(where libtorch was found). Pass the prefix of one LibTorch as LIBTORCH=<prefix>.")
  endif()
endforeach()

if(LIBTORCH_LIB_DIR MATCHES "^(/usr)?/lib(64)?(/|$)")
  set(LIBTORCH_RPATH "")
else()
  set(LIBTORCH_RPATH "${LIBTORCH_LIB_DIR}")
endif()

get_target_property(torch_standard torch CXX_STANDARD)
if(torch_standard AND torch_standard GREATER 17)
  set(LIBTORCH_CXX_STANDARD ${torch_standard})
else()
  set(LIBTORCH_CXX_STANDARD 17)
endif()

if(TARGET torch_cuda)
  set(cuda "with CUDA")
else()
  set(cuda "CPU only")
endif()
message(STATUS "LibTorch ${Torch_VERSION} (${cuda}) in ${LIBTORCH_LIB_DIR}, C++${LIBTORCH_CXX_STANDARD}")

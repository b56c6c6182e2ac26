# kwscc's CMake package: find_package(kwscc CONFIG) with -Dkwscc_DIR="$(kwscc --cmake-dir)".
#
# kwscc_add_model(<target> MODEL <file> [CALIB <data>] [NAME <name>] [CPU <core>] [OPTIONS <kwscc flags>...])
#
#   A static library <target> holding the C kwscc generates from MODEL (.onnx or .tflite) into
#   ${CMAKE_CURRENT_BINARY_DIR}/kwscc/<target>/, with that folder as its PUBLIC include directory
#   (#include "<name>.h"). The C is generated when the project is configured and again, by a custom
#   command, whenever the model or the calibration data change: editing either regenerates and rebuilds.
#     CALIB    calibration data as kwscc takes it: FILE.npy, FILE.npz or FILE.npz:KEY (needed for float models)
#     NAME     C name prefix (default: <target>): a lowercase C identifier
#     CPU      kwscc --cpu (default cortex-m4): sizes scratch for that core's CMSIS-NN build
#     OPTIONS  any other kwscc compile flags, e.g. --rounding single
#
#   <target> links the target kwscc_cmsis_nn (alias kwscc::cmsis_nn), one per project, shared by all models:
#     - CMSIS_NN_PATH set to an ARM-software/CMSIS-NN checkout: built from exactly the source files the
#       models call (kwscc lists them by scanning that checkout for the model's CPU build);
#     - otherwise kwscc's own portable C kernels.
#   All models of a project must use the same --rounding (the library is built once).
#
# KWSCC_EXECUTABLE: the kwscc program (default: the one installed with this package, else on PATH).

include_guard(GLOBAL)

if(NOT KWSCC_EXECUTABLE)
    find_program(KWSCC_EXECUTABLE kwscc
        HINTS "${CMAKE_CURRENT_LIST_DIR}/../../../../../bin" "${CMAKE_CURRENT_LIST_DIR}/../../.venv/bin"
        DOC "the kwscc compiler")
endif()
if(NOT KWSCC_EXECUTABLE)
    set(kwscc_FOUND FALSE)
    set(kwscc_NOT_FOUND_MESSAGE "kwscc: the kwscc program was not found: put it on PATH or set KWSCC_EXECUTABLE")
    return()
endif()
set(CMSIS_NN_PATH "${CMSIS_NN_PATH}" CACHE PATH "ARM-software/CMSIS-NN checkout (empty: kwscc's own kernels)")

function(kwscc_add_model target)
    cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;CALIB;NAME;CPU" "OPTIONS")
    if(ARG_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "kwscc_add_model(${target}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
    endif()
    if(NOT ARG_MODEL)
        message(FATAL_ERROR "kwscc_add_model(${target}): MODEL <file> is required")
    endif()
    get_filename_component(model "${ARG_MODEL}" ABSOLUTE)
    if(NOT EXISTS "${model}")
        message(FATAL_ERROR "kwscc_add_model(${target}): no such model file: ${model}")
    endif()
    if(ARG_NAME)
        set(name "${ARG_NAME}")
    else()
        string(TOLOWER "${target}" name)
        string(MAKE_C_IDENTIFIER "${name}" name)
    endif()
    if(NOT name MATCHES "^[a-z][a-z0-9_]*$" OR name MATCHES "__|_$")
        message(FATAL_ERROR "kwscc_add_model(${target}): NAME '${name}' is not a lowercase C identifier "
                            "(letters, digits, single underscores)")
    endif()

    set(out "${CMAKE_CURRENT_BINARY_DIR}/kwscc/${target}")
    set(cmd "${KWSCC_EXECUTABLE}" "${model}" -o "${out}" --name "${name}")
    set(inputs "${model}")
    if(ARG_CALIB)
        set(calib_file "${ARG_CALIB}")
        set(calib_key "")
        if(NOT EXISTS "${calib_file}" AND calib_file MATCHES "^(.+)(:[^:/\\\\]+)$")
            set(calib_file "${CMAKE_MATCH_1}")
            set(calib_key "${CMAKE_MATCH_2}")
        endif()
        get_filename_component(calib_file "${calib_file}" ABSOLUTE)
        list(APPEND cmd --calib "${calib_file}${calib_key}")
        list(APPEND inputs "${calib_file}")
    endif()
    if(ARG_CPU)
        list(APPEND cmd --cpu "${ARG_CPU}")
    endif()
    if(CMSIS_NN_PATH)
        list(APPEND cmd --cmsis-nn "${CMSIS_NN_PATH}")
    else()
        list(APPEND cmd --with-host-kernels)
    endif()
    list(APPEND cmd ${ARG_OPTIONS})
    set(outputs "${out}/${name}.c" "${out}/${name}.h" "${out}/${name}_cmsis_nn_sources.txt")

    # Generate now, so that the kernel library knows its files; again when an input changes (reconfigure).
    string(REPLACE ";" " " command_line "${cmd}")
    set(stamp "${out}/.kwscc_command")
    set(stale FALSE)
    if(NOT EXISTS "${stamp}")
        set(stale TRUE)
    else()
        file(READ "${stamp}" previous)
        if(NOT previous STREQUAL command_line)
            set(stale TRUE)
        endif()
        foreach(file IN LISTS outputs)
            if(NOT EXISTS "${file}")
                set(stale TRUE)
            endif()
        endforeach()
        foreach(file IN LISTS inputs)
            if("${file}" IS_NEWER_THAN "${stamp}")
                set(stale TRUE)
            endif()
        endforeach()
    endif()
    if(stale)
        message(STATUS "kwscc: compiling ${ARG_MODEL} for ${target}")
        execute_process(COMMAND ${cmd} RESULT_VARIABLE status OUTPUT_QUIET ERROR_VARIABLE errors)
        if(NOT status EQUAL 0)
            message(FATAL_ERROR "kwscc_add_model(${target}): kwscc failed:\n${errors}")
        endif()
        file(WRITE "${stamp}" "${command_line}")
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${inputs})

    add_custom_command(OUTPUT ${outputs}
        COMMAND ${cmd}
        COMMAND ${CMAKE_COMMAND} -E touch "${stamp}"
        DEPENDS ${inputs}
        COMMENT "kwscc: compiling ${ARG_MODEL}"
        VERBATIM)
    add_library(${target} STATIC "${out}/${name}.c" "${out}/${name}.h")
    target_include_directories(${target} PUBLIC "${out}")
    _kwscc_kernel_library("${target}" "${out}" "${name}")
    target_link_libraries(${target} PUBLIC kwscc_cmsis_nn)
endfunction()

# The one CMSIS-NN library of the project: a checkout's files the models call, or kwscc's own kernels.
function(_kwscc_kernel_library target out name)
    file(STRINGS "${out}/${name}.h" single REGEX "_SINGLE_ROUNDING 1")
    if(single)
        set(rounding single)
    else()
        set(rounding default)
    endif()
    get_property(project_rounding GLOBAL PROPERTY KWSCC_ROUNDING)
    if(project_rounding AND NOT project_rounding STREQUAL rounding)
        message(FATAL_ERROR "kwscc_add_model(${target}): --rounding ${rounding} differs from the other models' "
                            "(${project_rounding}): CMSIS-NN is built once per project")
    endif()
    set_property(GLOBAL PROPERTY KWSCC_ROUNDING "${rounding}")

    if(NOT TARGET kwscc_cmsis_nn)
        add_library(kwscc_cmsis_nn STATIC)
        add_library(kwscc::cmsis_nn ALIAS kwscc_cmsis_nn)
        if(CMSIS_NN_PATH)
            # a source of its own, so that the library builds even when no model calls a CMSIS-NN function
            # (every layer on kwscc's kernels in NAME.c); it defines nothing, so no image ever links it in
            set(stub "${CMAKE_BINARY_DIR}/kwscc/kwscc_cmsis_nn.c")
            file(GENERATE OUTPUT "${stub}"
                 CONTENT "/* Generated by kwsccConfig.cmake */\ntypedef int kwscc_cmsis_nn_is_not_empty;\n")
            target_sources(kwscc_cmsis_nn PRIVATE "${stub}")
            target_include_directories(kwscc_cmsis_nn PUBLIC "${CMSIS_NN_PATH}/Include")
            if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
                # some releases' headers use uint8_t before including stdint.h
                target_compile_options(kwscc_cmsis_nn PRIVATE "SHELL:-include stdint.h")
            endif()
        else()
            file(GLOB kernels "${out}/cmsis_nn_host/*.c")
            target_sources(kwscc_cmsis_nn PRIVATE ${kernels})
            target_include_directories(kwscc_cmsis_nn PUBLIC "${out}/cmsis_nn_host")
        endif()
        if(rounding STREQUAL "single")
            target_compile_definitions(kwscc_cmsis_nn PUBLIC CMSIS_NN_USE_SINGLE_ROUNDING)
        endif()
    endif()
    if(CMSIS_NN_PATH)
        file(STRINGS "${out}/${name}_cmsis_nn_sources.txt" files)
        foreach(file IN LISTS files)
            target_sources(kwscc_cmsis_nn PRIVATE "${CMSIS_NN_PATH}/${file}")
        endforeach()
    endif()
endfunction()
